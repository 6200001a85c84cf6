//! `POST /graphql`: GitHub's schema for deployments with their latest status, the
//! default branch, `Ref.compare` and a commit's checks, answered from the same state as
//! REST; refused like GitHub for a classic token without `repo`, and switched off like
//! a proxy or an old GitHub Enterprise Server.

use sandbox::TokenSpec;
use serde_json::{json, Value};

use crate::common::*;

const DEPLOYMENTS: &str = "query($owner: String!, $name: String!, $envs: [String!]) {
  repository(owner: $owner, name: $name) {
    nameWithOwner url defaultBranchRef { name target { oid } }
    deployments(environments: $envs, first: 10, orderBy: {field: CREATED_AT, direction: DESC}) {
      totalCount pageInfo { hasNextPage }
      nodes { databaseId commitOid ref { name prefix } environment state task payload
        creator { login } createdAt
        latestStatus { state description logUrl environmentUrl createdAt } }
    }
  }
}";

async fn graphql(api: &Api, query: &str, variables: Value) -> Resp {
    api.post("/graphql", json!({"query": query, "variables": variables}))
        .await
}

#[tokio::test]
async fn deployments_with_their_latest_status_match_rest() {
    let (_sb, api) = setup().await;
    let first = api
        .post(
            "/repos/acme/api/deployments",
            json!({"ref": "main", "environment": "staging", "required_contexts": [], "payload": {"a": 1}}),
        )
        .await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let id = first.body["id"].as_u64().unwrap();
    let status = api
        .post(
            &format!("/repos/acme/api/deployments/{id}/statuses"),
            json!({"state": "success", "log_url": "https://ci.test/1", "environment_url": "https://stg.test"}),
        )
        .await;
    assert_eq!(status.status, 201);
    let second = api
        .post(
            "/repos/acme/api/deployments",
            json!({"ref": first.body["sha"], "environment": "production", "required_contexts": []}),
        )
        .await;
    assert_eq!(second.status, 201);

    let out = graphql(&api, DEPLOYMENTS, json!({"owner": "acme", "name": "api"})).await;
    assert_eq!(out.status, 200);
    assert_eq!(out.header("x-ratelimit-resource"), Some("graphql"));
    assert!(out.body.get("errors").is_none(), "{:#}", out.body);
    let repo = &out.body["data"]["repository"];
    assert_eq!(repo["nameWithOwner"], "acme/api");
    assert_eq!(repo["defaultBranchRef"]["name"], "main");
    let deployments = &repo["deployments"];
    assert_eq!(deployments["totalCount"], 2);
    assert_eq!(deployments["pageInfo"]["hasNextPage"], false);
    let nodes = deployments["nodes"].as_array().unwrap();
    // Newest first; one made from a sha has no ref.
    assert_eq!(nodes[0]["databaseId"], second.body["id"]);
    assert!(nodes[0]["ref"].is_null());
    assert_eq!(nodes[0]["state"], "PENDING");
    assert!(nodes[0]["latestStatus"].is_null());
    let n = &nodes[1];
    assert_eq!(n["databaseId"], id);
    assert_eq!(n["commitOid"], first.body["sha"]);
    assert_eq!(n["ref"], json!({"name": "main", "prefix": "refs/heads/"}));
    assert_eq!(n["environment"], "staging");
    assert_eq!(n["state"], "ACTIVE");
    assert_eq!(n["task"], "deploy");
    assert_eq!(n["creator"]["login"], first.body["creator"]["login"]);
    assert_eq!(n["createdAt"], first.body["created_at"]);
    // The payload is a JSON string, as in GitHub's schema.
    let payload: Value = serde_json::from_str(n["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload, json!({"a": 1}));
    let latest = &n["latestStatus"];
    assert_eq!(latest["state"], "SUCCESS");
    assert_eq!(latest["logUrl"], "https://ci.test/1");
    assert_eq!(latest["environmentUrl"], "https://stg.test");
    assert_eq!(latest["createdAt"], status.body["created_at"]);

    let out = graphql(
        &api,
        DEPLOYMENTS,
        json!({"owner": "acme", "name": "api", "envs": ["production"]}),
    )
    .await;
    let nodes = out.body["data"]["repository"]["deployments"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["environment"], "production");
}

#[tokio::test]
async fn ref_compare_answers_what_rest_compare_does() {
    let (sb, api) = setup().await;
    let base = sb.commit("acme/api", "main", "one");
    sb.create_branch("acme/api", "topic", "main");
    sb.commit("acme/api", "topic", "two");
    sb.commit("acme/api", "topic", "three");
    sb.commit("acme/api", "main", "four");
    let query = "query($head: String!) { repository(owner: \"acme\", name: \"api\") {
        main: ref(qualifiedName: \"refs/heads/main\") { name target { oid } compare(headRef: $head) { aheadBy behindBy status } }
        missing: ref(qualifiedName: \"nope\") { name } } }";
    let out = graphql(&api, query, json!({"head": "topic"})).await;
    let rest = api.get("/repos/acme/api/compare/main...topic").await;
    let c = &out.body["data"]["repository"]["main"]["compare"];
    assert_eq!(c["aheadBy"], rest.body["ahead_by"]);
    assert_eq!(c["behindBy"], rest.body["behind_by"]);
    assert_eq!(c["status"], "DIVERGED");
    assert_eq!(rest.body["status"], "diverged");
    assert!(out.body["data"]["repository"]["missing"].is_null());
    // A sha works as the head, as in REST.
    let out = graphql(&api, query, json!({"head": base})).await;
    assert_eq!(
        out.body["data"]["repository"]["main"]["compare"],
        json!({"aheadBy": 0, "behindBy": 1, "status": "BEHIND"})
    );
}

#[tokio::test]
async fn a_commits_checks_are_its_statuses_and_check_runs() {
    let (sb, api) = setup().await;
    sb.set_status("acme/api", "main", "ci/build", "failure");
    sb.set_status("acme/api", "main", "ci/build", "success");
    sb.set_status("acme/api", "main", "security", "pending");
    let query = "{ repository(owner: \"acme\", name: \"api\") { object(expression: \"main\") {
        ... on Commit { oid statusCheckRollup { state contexts(first: 100) { nodes { __typename
          ... on StatusContext { context state } ... on CheckRun { name status conclusion } } } } } } } }";
    let out = graphql(&api, query, json!({})).await;
    let rollup = &out.body["data"]["repository"]["object"]["statusCheckRollup"];
    assert_eq!(rollup["state"], "PENDING", "{:#}", out.body);
    let mut contexts: Vec<(String, String)> = rollup["contexts"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["context"].as_str().unwrap().to_string(),
                n["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    contexts.sort();
    assert_eq!(
        contexts,
        vec![
            ("ci/build".to_string(), "SUCCESS".to_string()),
            ("security".to_string(), "PENDING".to_string())
        ]
    );
}

#[tokio::test]
async fn connections_need_a_page_size_of_at_most_100() {
    let (_sb, api) = setup().await;
    let out = graphql(
        &api,
        "{ repository(owner: \"acme\", name: \"api\") { deployments(first: 101) { totalCount } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        out.body["errors"][0]["type"], "EXCESSIVE_PAGINATION",
        "{:#}",
        out.body
    );
    let out = graphql(
        &api,
        "{ repository(owner: \"acme\", name: \"api\") { deployments { totalCount } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        out.body["errors"][0]["type"],
        "MISSING_PAGINATION_BOUNDARIES"
    );
    // A field GitHub does not have is a validation error, not a silent null.
    let out = graphql(
        &api,
        "{ repository(owner: \"acme\", name: \"api\") { nope } }",
        json!({}),
    )
    .await;
    assert!(out.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("nope"));
}

#[tokio::test]
async fn a_classic_token_without_repo_is_refused_graphql_but_not_rest() {
    let (sb, api) = setup().await;
    sb.add_token_with("deploy-only", TokenSpec::classic(&["repo_deployment"]));
    let api = api.with_token(Some("deploy-only"));
    let out = graphql(&api, DEPLOYMENTS, json!({"owner": "acme", "name": "api"})).await;
    assert_eq!(out.status, 200);
    assert_eq!(out.header("x-oauth-scopes"), Some("repo_deployment"));
    assert!(out.body.get("data").is_none() || out.body["data"]["repository"].is_null());
    assert_eq!(out.body["errors"][0]["type"], "NOT_FOUND", "{:#}", out.body);
    assert_eq!(
        out.body["errors"][0]["message"],
        "Could not resolve to a Repository with the name 'acme/api'."
    );
    assert_eq!(api.get("/repos/acme/api/deployments").await.status, 200);
    // No credentials at all: 401, as on GitHub.
    let out = graphql(&api.with_token(None), DEPLOYMENTS, json!({})).await;
    assert_eq!(out.status, 401);
}

#[tokio::test]
async fn graphql_can_be_switched_off_like_behind_a_rest_only_proxy() {
    let (sb, api) = setup().await;
    sb.set_graphql(false);
    let out = graphql(&api, DEPLOYMENTS, json!({"owner": "acme", "name": "api"})).await;
    assert_eq!(out.status, 404);
    assert_eq!(out.body["message"], "Not Found");
    assert_eq!(api.get("/repos/acme/api/deployments").await.status, 200);
    sb.set_graphql(true);
    let out = graphql(&api, DEPLOYMENTS, json!({"owner": "acme", "name": "api"})).await;
    assert_eq!(out.status, 200);
}
