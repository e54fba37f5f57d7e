//! Authentication is configuration: what Redis holds never opens the API, and an
//! anonymous API refuses what a hostile web page makes a browser send.

use optimus_api::config::Auth;
use serde_json::Value;

use crate::helpers::{python_job, spawn_app_api};

#[tokio::test]
async fn with_keys_required_a_flushed_key_set_refuses_everyone() {
    let app = spawn_app_api(|api| api.auth = Auth::Required).await;
    // No key made yet: refused, not open.
    let (status, answer) = app.post_job(&python_job()).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("unauthenticated")), "{answer}");
    let (_, key) = app.store.add_key("ops", 0, optimus_common::Quota::NONE).await.unwrap();
    let submit = |key: Option<String>| {
        let mut req = app.http.post(format!("{}/jobs", app.base)).json(&python_job());
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(submit(Some(key.clone())).await, 202);
    assert_eq!(submit(None).await, 401);

    // The key set vanishes (a flush, a failover to an empty replica): still closed.
    let client = redis::Client::open(app.redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
    assert_eq!(submit(None).await, 401, "a flushed key set opened the API");
    assert_eq!(submit(Some(key)).await, 401);
    let health = app.http.get(format!("{}/health", app.base)).send().await.unwrap();
    assert_eq!(health.status(), 200, "probes stay open");
}

#[tokio::test]
async fn an_anonymous_api_refuses_cross_site_posts_and_rebound_names() {
    let app = spawn_app_api(|api| api.auth = Auth::Anonymous).await;
    let form = "language=python&version=*&files=print(1)";
    let piston = |origin: Option<&str>, host: Option<&str>| {
        let mut req = app
            .http
            .post(format!("{}/api/v2/execute", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form);
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        if let Some(host) = host {
            req = req.header("host", host);
        }
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or_default();
            (status, body["error"]["code"].as_str().unwrap_or("").to_string())
        }
    };
    // A page on another site posts a form to the local API: refused, nothing queued.
    assert_eq!(piston(Some("https://evil.example"), None).await, (403, "cross_origin".into()));
    // A rebound name (the attacker's domain resolving to this address): refused.
    assert_eq!(piston(None, Some("rebind.evil.example")).await, (403, "foreign_host".into()));
    let res = app.http.get(format!("{}/jobs", app.base)).header("host", "rebind.evil.example").send().await.unwrap();
    assert_eq!(res.status(), 403, "reading through a rebound name");
    assert_eq!(app.redis_keys().await, 0);
    // The API's own page, and clients that are not browsers, are served.
    let own = app.base.clone();
    let (status, answer) = app.post_job(&python_job()).await;
    assert_eq!(status, 202, "{answer}");
    let res =
        app.http.post(format!("{}/jobs", app.base)).header("origin", own).json(&python_job()).send().await.unwrap();
    assert_eq!(res.status(), 202);
}
