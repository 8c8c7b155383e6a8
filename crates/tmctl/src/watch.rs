//! `tmctl watch`: every event passing through the broker, as it arrives,
//! in the layout of the CloudEvents SDKs' `Event.String()` (context
//! attributes, extensions, then the data, JSON pretty-printed), with
//! colours on a terminal (none when `NO_COLOR` is set).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use anyhow::{Context, Result, bail};
use base64::Engine;
use serde_json::{Map, Value};

use crate::home::Home;
use crate::runtime::{RunState, broker_url};

/// Context attributes, in the order the SDKs print them.
const CONTEXT: [&str; 8] = [
    "specversion",
    "type",
    "source",
    "subject",
    "id",
    "time",
    "dataschema",
    "datacontenttype",
];

pub async fn run(home: &Home, broker: Option<&str>) -> Result<()> {
    let dir = home.broker(broker)?;
    let Some(port) = RunState::load(&dir)?.broker_port() else {
        bail!(
            "broker {0} is not running: start it with `tmctl start {0}`",
            dir.name
        );
    };
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .build()
        .context("cannot make an HTTP client")?;
    let mut resp = client
        .get(format!("http://127.0.0.1:{port}/-/watch"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .with_context(|| format!("broker {} does not answer", dir.name))?;
    eprintln!(
        "Watching broker {} at {} (Ctrl-C to stop)",
        dir.name,
        broker_url(port)
    );
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let chunk = tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            chunk = resp.chunk() => chunk,
        };
        let Some(chunk) = chunk.context("the connection to the broker broke")? else {
            bail!("broker {} stopped", dir.name);
        };
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let Ok(Value::Object(event)) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            let text = match event.get("watchLagged") {
                Some(n) => format!("({n} events went by while this watch was behind)\n"),
                None => render(&event, colour),
            };
            let mut out = std::io::stdout().lock();
            if out
                .write_all(text.as_bytes())
                .and_then(|_| out.flush())
                .is_err()
            {
                // The reader went away (a closed pipe): nothing left to do.
                return Ok(());
            }
        }
    }
}

/// One event, readably.
pub fn render(event: &Map<String, Value>, colour: bool) -> String {
    let heading = |s: &str| {
        if colour {
            let style = Style::new().bold().fg_color(Some(AnsiColor::Green.into()));
            format!("{style}{s}{style:#}")
        } else {
            s.to_owned()
        }
    };
    let name = |s: &str| {
        if colour {
            let style = Style::new().fg_color(Some(AnsiColor::Cyan.into()));
            format!("{style}{s}{style:#}")
        } else {
            s.to_owned()
        }
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = format!("{}\n", heading("☁️  cloudevents.Event"));
    out.push_str(&format!("{}\n", heading("Context Attributes,")));
    for key in CONTEXT {
        if let Some(v) = event.get(key) {
            out.push_str(&format!("  {}: {}\n", name(key), text(v)));
        }
    }
    let extensions: Vec<(&String, &Value)> = event
        .iter()
        .filter(|(k, _)| !CONTEXT.contains(&k.as_str()) && *k != "data" && *k != "data_base64")
        .collect();
    if !extensions.is_empty() {
        out.push_str(&format!("{}\n", heading("Extensions,")));
        for (k, v) in extensions {
            out.push_str(&format!("  {}: {}\n", name(k), text(v)));
        }
    }
    let data = match (event.get("data"), event.get("data_base64")) {
        (Some(Value::String(s)), _) => Some(s.clone()),
        (Some(v), _) => Some(serde_json::to_string_pretty(v).unwrap_or_default()),
        (None, Some(Value::String(b64))) => Some(
            match base64::engine::general_purpose::STANDARD.decode(b64) {
                Ok(bytes) => String::from_utf8(bytes)
                    .unwrap_or_else(|_| format!("({} bytes of binary data)", b64.len() * 3 / 4)),
                Err(_) => b64.clone(),
            },
        ),
        _ => None,
    };
    if let Some(data) = data {
        out.push_str(&format!("{}\n", heading("Data,")));
        for line in data.lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_event_is_attributes_extensions_then_pretty_data() {
        let event = json!({
            "specversion": "1.0", "id": "e1", "source": "arn:t", "type": "com.amazon.dynamodb.stream_record",
            "subject": "pk", "datacontenttype": "application/json",
            "dynamodboperation": "INSERT",
            "data": {"Keys": {"pk": {"S": "a"}}},
        });
        let text = render(event.as_object().unwrap(), false);
        let expected = "☁️  cloudevents.Event\nContext Attributes,\n  specversion: 1.0\n  type: com.amazon.dynamodb.stream_record\n  source: arn:t\n  subject: pk\n  id: e1\n  datacontenttype: application/json\nExtensions,\n  dynamodboperation: INSERT\nData,\n  {\n    \"Keys\": {\n      \"pk\": {\n        \"S\": \"a\"\n      }\n    }\n  }\n";
        assert_eq!(text, expected);
        assert!(!text.contains('\x1b'));
        assert!(render(event.as_object().unwrap(), true).contains('\x1b'));
    }
}
