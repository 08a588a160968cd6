//! The client of an OpenAI-compatible chat-completions endpoint: one completion per request
//! (`n = 1`; some servers ignore `n`, and one request per completion gives each its own token
//! count), a few retries on transport errors, 429 and 5xx, and every error message with the key
//! (and the URL's query, where some services put one) taken out.

use std::time::Duration;

use serde_json::{Value, json};

/// Where the endpoint is and who we are to it.
#[derive(Clone)]
pub struct EndpointConfig {
    /// The API's base, e.g. `https://api.openai.com/v1` (`/chat/completions` is appended unless
    /// the URL already ends with it).
    pub url: String,
    pub model: String,
    key: Option<String>,
}

impl std::fmt::Debug for EndpointConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointConfig").field("model", &self.model).field("key", &self.key.as_ref().map(|_| "<redacted>")).finish_non_exhaustive()
    }
}

impl EndpointConfig {
    pub fn new(url: impl Into<String>, model: impl Into<String>, key: Option<String>) -> EndpointConfig {
        EndpointConfig { url: url.into(), model: model.into(), key: key.filter(|k| !k.is_empty()) }
    }

    fn completions_url(&self) -> String {
        let base = self.url.trim_end_matches('/');
        if base.ends_with("/chat/completions") { base.to_owned() } else { format!("{base}/chat/completions") }
    }

    /// `text` with the key and the URL's query replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        if let Some(key) = &self.key {
            out = out.replace(key.as_str(), "<key>");
        }
        if let Some((_, query)) = self.url.split_once('?')
            && !query.is_empty()
        {
            out = out.replace(query, "<query>");
        }
        out
    }
}

/// One completion as the endpoint gave it.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub text: String,
    /// `usage.completion_tokens`; `max_tokens` when the endpoint does not say.
    pub tokens: u32,
    pub finished: bool,
}

/// A connection to the endpoint.
pub struct Endpoint {
    config: EndpointConfig,
    agent: ureq::Agent,
}

/// The longest answer body read.
const MAX_BODY: u64 = 8 << 20;

impl Endpoint {
    pub fn new(config: EndpointConfig, timeout: Duration) -> anyhow::Result<Endpoint> {
        anyhow::ensure!(
            config.url.starts_with("http://") || config.url.starts_with("https://"),
            "the endpoint URL must start with http:// or https://, not `{}`",
            config.redact(&config.url)
        );
        anyhow::ensure!(
            cfg!(feature = "tls") || !config.url.starts_with("https://"),
            "an https endpoint needs the scorer built with the `tls` feature (the endpoint variant's manifest asks for it)"
        );
        let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).build().into();
        Ok(Endpoint { config, agent })
    }

    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// One completion of `messages` (`(role, content)` pairs). `Err`: why there is none, the
    /// key taken out.
    pub fn complete(&self, messages: &[(String, String)], temperature: f64, max_tokens: u32) -> Result<Reply, String> {
        let body = json!({
            "model": self.config.model,
            "messages": messages.iter().map(|(role, content)| json!({"role": role, "content": content})).collect::<Vec<_>>(),
            "temperature": temperature,
            "max_tokens": max_tokens,
            "n": 1,
        })
        .to_string();
        let mut last = String::new();
        for attempt in 0..3 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(500 << attempt));
            }
            match self.post(&body) {
                Ok((200, text)) => return self.parse(&text, max_tokens).map_err(|why| self.config.redact(&why)),
                Ok((status, text)) => {
                    let excerpt: String = text.chars().take(300).collect();
                    last = format!("the endpoint answered HTTP {status}: {}", excerpt.trim());
                    if status != 429 && status < 500 {
                        break;
                    }
                }
                Err(why) => last = format!("cannot reach the endpoint: {why}"),
            }
        }
        Err(self.config.redact(&last))
    }

    fn post(&self, body: &str) -> Result<(u16, String), ureq::Error> {
        let mut request = self.agent.post(self.config.completions_url()).header("Content-Type", "application/json");
        if let Some(key) = &self.config.key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        let mut response = request.send(body)?;
        let status = response.status().as_u16();
        let text = response.body_mut().with_config().limit(MAX_BODY).read_to_string()?;
        Ok((status, text))
    }

    fn parse(&self, text: &str, max_tokens: u32) -> Result<Reply, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("the endpoint's answer is not JSON ({e})"))?;
        let choice = v["choices"].get(0).ok_or_else(|| format!("the endpoint's answer has no choices: {}", text.chars().take(200).collect::<String>()))?;
        let text = choice["message"]["content"].as_str().unwrap_or_default().to_owned();
        let finished = choice["finish_reason"].as_str() != Some("length");
        let tokens = v["usage"]["completion_tokens"].as_u64().map_or(max_tokens, |t| u32::try_from(t).unwrap_or(u32::MAX));
        Ok(Reply { text, tokens, finished })
    }
}
