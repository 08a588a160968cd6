"""The CPU training step of rebench-models' benchmark GPT, in PyTorch, for comparison.

Same model as crates/models (GPT-2 layout: pre-norm blocks, 4x MLP with tanh-GELU, tied head,
biases everywhere, layer-norm eps 1e-5, N(0, 0.02) init), same batch (16 x 128 tokens of a
512-token vocabulary), same optimizer (AdamW, weight decay 0.1 on matrices and embeddings only,
gradient clipping at global norm 1.0). Prints one JSON line with median seconds per phase.

    python torch_step.py [--threads 2] [--steps 10] [--attention sdpa|manual]
"""

import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB, CONTEXT, WIDTH, DEPTH, HEADS, BATCH = 512, 128, 256, 4, 4, 16


class Block(nn.Module):
    def __init__(self, attention):
        super().__init__()
        self.attention = attention
        self.ln_1 = nn.LayerNorm(WIDTH, eps=1e-5)
        self.c_attn = nn.Linear(WIDTH, 3 * WIDTH)
        self.c_proj = nn.Linear(WIDTH, WIDTH)
        self.ln_2 = nn.LayerNorm(WIDTH, eps=1e-5)
        self.c_fc = nn.Linear(WIDTH, 4 * WIDTH)
        self.mlp_proj = nn.Linear(4 * WIDTH, WIDTH)
        self.register_buffer("mask", torch.tril(torch.ones(CONTEXT, CONTEXT, dtype=torch.bool)))

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, HEADS, c // HEADS).transpose(1, 2) for z in (q, k, v))
        if self.attention == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) / math.sqrt(c // HEADS)
            att = att.masked_fill(~self.mask[:t, :t], float("-inf")).softmax(dim=-1)
            y = att @ v
        x = x + self.c_proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self, attention):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, WIDTH)
        self.wpe = nn.Embedding(CONTEXT, WIDTH)
        self.h = nn.ModuleList(Block(attention) for _ in range(DEPTH))
        self.ln_f = nn.LayerNorm(WIDTH, eps=1e-5)
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * DEPTH) if name.endswith(("c_proj.weight", "mlp_proj.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.h:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, VOCAB), targets.reshape(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--attention", choices=["sdpa", "manual"], default="sdpa")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Gpt(args.attention)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=3e-4
    )
    times = []
    for step in range(args.steps + 2):
        tokens = torch.randint(0, VOCAB, (BATCH, CONTEXT + 1))
        t0 = time.perf_counter()
        loss = model(tokens[:, :-1], tokens[:, 1:])
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
        if step >= 2:
            times.append((t1 - t0, t2 - t1, t3 - t2, t3 - t0))
    fwd, bwd, optim, total = (statistics.median(x) for x in zip(*times))
    flops = 6 * (12 * DEPTH * WIDTH**2 + VOCAB * WIDTH) + 12 * DEPTH * CONTEXT * WIDTH
    print(json.dumps({
        "impl": f"pytorch-{torch.__version__}-{args.attention}",
        "threads": args.threads,
        "step_s": round(total, 4),
        "forward_s": round(fwd, 4),
        "backward_s": round(bwd, 4),
        "optimizer_s": round(optim, 4),
        "tokens_per_s": round(BATCH * CONTEXT / total),
        "gflops": round(flops * BATCH * CONTEXT / total / 1e9, 1),
        "final_loss": round(loss.item(), 4),
    }))


if __name__ == "__main__":
    main()
