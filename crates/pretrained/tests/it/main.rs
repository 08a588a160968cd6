//! Integration tests of the pretrained crate: batches, the corpus assets, and a tiny pretraining
//! run reused from the store and reproduced from its checkpoint.

mod batches;
mod pretrain;
