//! Small web pages so the links the bot prints lead somewhere: a repository's
//! deployments, a commit, a comparison, and a simulated deployer run's log.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;

use crate::http::segments;
use crate::state::Repo;
use crate::{lock, Inner};

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static(content_type));
    resp
}

fn html(title: &str, content: &str) -> Response {
    let body = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title></head>\n<body>\n<h1>{t}</h1>\n{content}\n</body></html>\n",
        t = escape(title)
    );
    page(StatusCode::OK, "text/html; charset=utf-8", body)
}

fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        "Not Found\n".into(),
    )
}

pub(crate) fn serve(inner: &Inner, method: &str, path: &str) -> Response {
    if method != "GET" && method != "HEAD" {
        return not_found();
    }
    let segs = segments(path);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let st = lock(&inner.state);
    match segs.as_slice() {
        [] => {
            let items: String = st
                .repos()
                .map(|r| {
                    format!(
                        "<li><a href=\"/{n}\">{n}</a></li>\n",
                        n = escape(&r.full_name())
                    )
                })
                .collect();
            html("GitHub sandbox", &format!("<ul>\n{items}</ul>"))
        }
        [owner, name] | [owner, name, "deployments"] => match st.repo(&format!("{owner}/{name}")) {
            Some(r) => deployments_page(&inner.base, r),
            None => not_found(),
        },
        [owner, name, "commit", sha] => match st.repo(&format!("{owner}/{name}")) {
            Some(r) => match r.resolve(sha).and_then(|x| r.commit(&x.sha)) {
                Some(c) => html(
                    &format!("{} @ {}", r.full_name(), &c.sha[..7]),
                    &format!(
                        "<pre>commit {}\nAuthor: {} &lt;{}&gt;\nDate:   {}\n\n    {}</pre>",
                        c.sha,
                        escape(&c.author_name),
                        escape(&c.author_email),
                        c.date.to_rfc2822(),
                        escape(&c.message)
                    ),
                ),
                None => not_found(),
            },
            None => not_found(),
        },
        [owner, name, "compare", spec @ ..] if !spec.is_empty() => {
            match st.repo(&format!("{owner}/{name}")) {
                Some(r) => compare_page(r, &spec.join("/")),
                None => not_found(),
            }
        }
        [owner, name, "actions", "runs", n] => {
            let repo = format!("{owner}/{name}").to_ascii_lowercase();
            let runs = lock(&inner.runs);
            match runs
                .iter()
                .find(|r| r.number.to_string() == *n && r.repo.to_ascii_lowercase() == repo)
            {
                Some(run) => {
                    let mut text = format!(
                        "Simulated deployer, run #{} for deployment {} of {}\n\n",
                        run.number, run.deployment_id, run.repo
                    );
                    for line in &run.lines {
                        text.push_str(line);
                        text.push('\n');
                    }
                    page(StatusCode::OK, "text/plain; charset=utf-8", text)
                }
                None => not_found(),
            }
        }
        _ => not_found(),
    }
}

fn deployments_page(base: &str, r: &Repo) -> Response {
    let mut rows = String::new();
    for d in r.list_deployments(None, None, None, None) {
        let latest = d.statuses.last();
        let state = latest.map(|s| s.state.as_str()).unwrap_or("created");
        let log = latest
            .map(|s| s.log_url.as_str())
            .filter(|u| !u.is_empty())
            .map(|u| format!("<a href=\"{}\">log</a>", escape(u)))
            .unwrap_or_default();
        let env_url = d
            .statuses
            .iter()
            .rev()
            .map(|s| s.environment_url.as_str())
            .find(|u| !u.is_empty())
            .map(|u| format!("<a href=\"{}\">{}</a>", escape(u), escape(u)))
            .unwrap_or_default();
        rows.push_str(&format!(
            "<tr><td>#{}</td><td>{}</td><td><a href=\"{base}/{}/commit/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            d.id,
            escape(&d.git_ref),
            escape(&r.full_name()),
            d.sha,
            &d.sha[..7.min(d.sha.len())],
            escape(&d.environment),
            escape(&d.task),
            escape(state),
            escape(&d.creator.login),
            log,
            env_url,
        ));
    }
    let branches: String = r
        .branches
        .iter()
        .map(|(b, sha)| format!("<li>{} → {}</li>\n", escape(b), &sha[..7.min(sha.len())]))
        .collect();
    html(
        &format!("{} · deployments", r.full_name()),
        &format!(
            "<p>Default branch: {}</p>\n<ul>\n{branches}</ul>\n<table border=\"1\">\n<tr><th>id</th><th>ref</th><th>sha</th><th>environment</th><th>task</th><th>state</th><th>creator</th><th>log</th><th>url</th></tr>\n{rows}</table>",
            escape(&r.default_branch)
        ),
    )
}

fn compare_page(r: &Repo, spec: &str) -> Response {
    let Some((base, head)) = spec.split_once("...").or_else(|| spec.split_once("..")) else {
        return not_found();
    };
    let (Some(b), Some(h)) = (r.resolve(base), r.resolve(head)) else {
        return not_found();
    };
    let Some(c) = r.compare(&b.sha, &h.sha) else {
        return not_found();
    };
    let commits: String = c
        .ahead
        .iter()
        .map(|x| format!("<li>{} {}</li>\n", &x.sha[..7], escape(&x.message)))
        .collect();
    html(
        &format!("{}: {}", r.full_name(), spec),
        &format!(
            "<p>{} is {} ({} ahead, {} behind) of {}</p>\n<ul>\n{commits}</ul>",
            escape(head),
            c.status.as_str(),
            c.ahead.len(),
            c.behind.len(),
            escape(base)
        ),
    )
}
