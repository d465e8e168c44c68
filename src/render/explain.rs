//! `darlings explain PATH`: the audit's finding for one path, and every
//! keep or ignore rule that applies to it, as sentences or as one JSON
//! object. The finding is the audit's own row, so its rule — a person's
//! rule, or a rule of darlings' knowledge (`recreated`, `identity`) — is
//! the one the classifier's judge named.

use std::io::{self, Write};

use serde_json::{json, Map, Value};

use super::json::{path_fields, FindingJson, SCHEMA_VERSION};
use crate::audit::Explained;
use crate::claims::check::State;
use crate::report::{Finding, RuleKind};
use crate::sanitize::escape;

/// The claim's state in one word and its detail.
fn state_words(state: &State) -> (&'static str, String) {
    match state {
        State::Kept(d) => ("kept", d.clone()),
        State::Broken { reason, .. } => ("broken", reason.clone()),
        State::Missing => ("missing", "the path does not exist: nothing to lose".into()),
        State::Unverified(d) => ("unverified", (*d).to_owned()),
    }
}

/// What the audit says when it has no row for the path.
fn no_finding(e: &Explained) -> String {
    if let Some((link, target)) = &e.through {
        return format!(
            "passes through the symlink {} (to {}): no entry of the audited tree as such, which darlings \
             reads following no link",
            escape(link),
            escape(target)
        );
    }
    match e.exists {
        Some(false) => "does not exist in the audited tree",
        _ if e.report.source != "walk" => "no change since the blank snapshot: it comes back at rollback",
        _ => "no finding",
    }
    .to_owned()
}

fn finding_words(f: &Finding) -> String {
    let mut line = f.verdict.name().to_owned();
    if let Some(sev) = f.severity() {
        line.push_str(&format!(" ({})", sev.name()));
    }
    if let Some(rule) = &f.rule {
        line.push_str(&format!("; {} {} ({})", rule.kind.name(), rule.pattern, rule.origin));
    }
    if let Some(p) = &f.precious {
        line.push_str(&format!("; {}", p.reason));
    }
    if let Some(d) = &f.detail {
        line.push_str(&format!("; {d}"));
    }
    line
}

/// Sentences, every name escaped for a terminal.
pub fn render_text(out: &mut dyn Write, e: &Explained) -> io::Result<()> {
    writeln!(out, "{}", escape(&e.path))?;
    match &e.finding {
        Some(f) => {
            writeln!(out, "  verdict: {}", escape(finding_words(f).as_bytes()))?;
            if f.path != e.path {
                writeln!(out, "  (the audit's row for it is {})", escape(&f.path))?;
            }
        }
        None => writeln!(out, "  verdict: none ({})", no_finding(e))?,
    }
    let knowledge = e.finding.as_ref().and_then(|f| f.rule.as_ref()).filter(|r| is_knowledge(r.kind));
    match (e.rules.is_empty(), knowledge) {
        // The audit's own rule: what darlings knows of the path decided it.
        (true, Some(rule)) => {
            let line = format!(
                "  no keep or ignore rule applies; decided by: {} {}  ({})",
                rule.kind.name(),
                rule.pattern,
                rule.origin
            );
            writeln!(out, "{}", escape(line.as_bytes()))?;
        }
        (true, None) => writeln!(out, "  no rule applies")?,
        (false, _) => rules_text(out, e)?,
    }
    if let Some((at, state)) = &e.claim {
        let (word, detail) = state_words(state);
        writeln!(out, "  claim on {}: {word}: {}", escape(at), escape(detail.as_bytes()))?;
    }
    Ok(())
}

/// A rule of darlings' knowledge, not a person's keep or ignore rule.
fn is_knowledge(kind: RuleKind) -> bool {
    matches!(kind, RuleKind::Recreated | RuleKind::Identity)
}

/// The keep and ignore rules that apply, the decider first, and why it wins.
fn rules_text(out: &mut dyn Write, e: &Explained) -> io::Result<()> {
    writeln!(out, "  rules that apply, most specific first:")?;
    for (i, (rule, at)) in e.rules.iter().enumerate() {
        let mut line = format!(
            "  {} {} {}  ({}), matches at {}",
            if i == 0 { "*" } else { " " },
            rule.kind.name(),
            rule.pattern,
            rule.origin,
            String::from_utf8_lossy(at)
        );
        if let Some(reason) = &rule.reason {
            line.push_str(&format!(": {reason}"));
        }
        writeln!(out, "{}", escape(line.as_bytes()))?;
    }
    if let Some((rule, _)) = e.rules.first() {
        let why = e.why.map(|w| format!(", because {w}")).unwrap_or_default();
        let decider = format!("  decided by: {} {}{why}", rule.kind.name(), rule.pattern);
        writeln!(out, "{}", escape(decider.as_bytes()))?;
    }
    Ok(())
}

/// One JSON object (`schema_version` as in the audit's JSON).
pub fn render_json(out: &mut dyn Write, e: &Explained) -> io::Result<()> {
    let mut doc = Map::new();
    doc.insert("schema_version".into(), SCHEMA_VERSION.into());
    doc.extend(path_fields("root", &e.report.root));
    doc.insert("source".into(), e.report.source.into());
    doc.extend(path_fields("path", &e.path));
    doc.insert("exists".into(), e.exists.map_or(Value::Null, Value::Bool));
    let through = e.through.as_ref().map_or(Value::Null, |(link, target)| {
        let mut t = path_fields("path", link);
        t.extend(path_fields("target", target));
        Value::Object(t)
    });
    doc.insert("through_symlink".into(), through);
    let finding = match &e.finding {
        Some(f) => serde_json::to_value(FindingJson(f)).map_err(io::Error::other)?,
        None => Value::Null,
    };
    doc.insert("finding".into(), finding);
    if e.finding.is_none() {
        doc.insert("no_finding".into(), no_finding(e).into());
    }
    let rules: Vec<Value> = e
        .rules
        .iter()
        .enumerate()
        .map(|(i, (rule, at))| {
            let mut r = match serde_json::to_value(rule) {
                Ok(Value::Object(m)) => m,
                _ => Map::new(),
            };
            r.extend(path_fields("at", at));
            r.insert("decides".into(), (i == 0).into());
            Value::Object(r)
        })
        .collect();
    doc.insert("rules".into(), rules.into());
    doc.insert("why".into(), e.why.map_or(Value::Null, Value::from));
    let claim = e.claim.as_ref().map_or(Value::Null, |(at, state)| {
        let (word, detail) = state_words(state);
        let mut c = path_fields("path", at);
        c.insert("state".into(), word.into());
        c.insert("detail".into(), detail.into());
        Value::Object(c)
    });
    doc.insert("claim".into(), claim);
    doc.insert("notes".into(), json!(e.report.notes));
    serde_json::to_writer_pretty(&mut *out, &Value::Object(doc)).map_err(io::Error::other)?;
    writeln!(out)
}
