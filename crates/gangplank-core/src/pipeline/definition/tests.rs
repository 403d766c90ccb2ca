//! Table tests for `parse`: the seed's pipeline reads into the expected definition, and every
//! kind of mistake is refused naming its line.

use serde_json::json;

use crate::pipeline::action::Action;
use crate::pipeline::definition::{ArtefactKind, InputType, parse};

const SEED: &str = r#"id: repo-1-promotion
name: repo-1 dev → test → prod
on:
  artefact:
    type: container
    include: ['^registry\.example/ecr-dev/repo-1$']
    tags: ['latest']
  pipeline_call:
    inputs:
      image:
        type: string
        required: true
      digest:
        type: string
        default: ""
concurrency:
  group: repo-1-${{ inputs.image }}
timeout-minutes: 10080
jobs:
  to-test:
    steps:
      - uses: actions/humanitec/approve@v1
        with: { env_id: test, message: "Confirm pushing DEV image to TEST repo" }
      - id: promote
        uses: actions/gangplank/promote-image@v1
        with:
          source: ${{ inputs.image }}@${{ inputs.digest }}
          destination: registry.example/ecr-test/repo-1
          live_tag: latest
      - uses: actions/gangplank/http@v1
        if: ${{ steps.promote.status == 'succeeded' }}
        with: { url: "http://127.0.0.1/health", expect_status: [200, 204] }
  to-prod:
    name: To production
    needs: [to-test]
    if: steps.promote.outputs.digest != ''
    steps:
      - uses: native://actions/humanitec/approve@v1
        with: { environment: production }
      - name: Promote
        uses: actions/gangplank/promote-image
        continue-on-error: true
        timeout-minutes: 30
        with:
          source: registry.example/ecr-test/repo-1@${{ steps.promote.outputs.digest }}
          destination: registry.example/ecr-prod/repo-1
"#;

#[test]
fn the_seed_pipeline_parses() {
    let def = parse(SEED).unwrap();
    assert_eq!(def.id.as_deref(), Some("repo-1-promotion"));
    assert_eq!(def.name, "repo-1 dev → test → prod");
    assert_eq!(def.timeout_minutes, 10080);
    assert_eq!(
        def.concurrency_group.as_deref(),
        Some("repo-1-${{ inputs.image }}")
    );
    let artefact = def.on.artefact.as_ref().unwrap();
    assert_eq!(artefact.kind, ArtefactKind::Container);
    assert_eq!(artefact.include, [r"^registry\.example/ecr-dev/repo-1$"]);
    assert_eq!(artefact.tags, ["latest"]);
    assert!(!def.on.deployment_request);
    let call = def.on.pipeline_call.as_ref().unwrap();
    assert!(call.inputs["image"].required);
    assert_eq!(call.inputs["digest"].kind, InputType::String);
    assert_eq!(call.inputs["digest"].default, Some(json!("")));
    let ids: Vec<&str> = def.jobs.iter().map(|job| job.id.as_str()).collect();
    assert_eq!(ids, ["to-test", "to-prod"]);
    let to_test = &def.jobs[0];
    assert_eq!(to_test.name, "to-test");
    assert_eq!(to_test.steps[0].uses, Action::Approve);
    assert_eq!(to_test.steps[0].name, "approve");
    assert_eq!(to_test.steps[1].id.as_deref(), Some("promote"));
    assert_eq!(to_test.steps[1].with["live_tag"], json!("latest"));
    assert_eq!(to_test.steps[2].uses, Action::Http);
    assert_eq!(to_test.steps[2].with["expect_status"], json!([200, 204]));
    let to_prod = &def.jobs[1];
    assert_eq!(to_prod.name, "To production");
    assert_eq!(to_prod.needs, ["to-test"]);
    assert!(to_prod.condition.is_some());
    assert_eq!(to_prod.steps[1].name, "Promote");
    assert!(to_prod.steps[1].continue_on_error);
    assert_eq!(to_prod.steps[1].timeout_minutes, Some(30));
    assert!(!to_test.steps[0].continue_on_error);
}

#[test]
fn defaults_and_short_forms() {
    let def = parse(
        "name: x\non:\n  pipeline_call:\n  deployment_request: {}\njobs:\n  a:\n    needs: b\n    steps: [{uses: actions/humanitec/log, with: {message: hi}}]\n  b:\n    steps: [{uses: actions/humanitec/log, with: {message: hi}}]\nconcurrency: plain\n",
    )
    .unwrap();
    assert_eq!(def.id, None);
    assert_eq!(def.timeout_minutes, 60);
    assert!(def.on.deployment_request);
    assert!(def.on.pipeline_call.unwrap().inputs.is_empty());
    assert_eq!(def.jobs[0].needs, ["b"]);
    assert_eq!(def.concurrency_group.as_deref(), Some("plain"));
}

#[test]
fn empty_permissions_are_accepted() {
    for permissions in ["permissions: {}", "permissions:", "permissions: null"] {
        let yaml = format!(
            "name: p\n{permissions}\non: {{pipeline_call: {{}}}}\njobs: {{a: {{steps: [{{uses: actions/humanitec/log, with: {{message: m}}}}]}}}}\n"
        );
        assert!(parse(&yaml).is_ok(), "{yaml}");
    }
}

/// A valid document with one line replaced: (line to replace, replacement).
const BASE: &str = "name: p
on:
  pipeline_call: {}
jobs:
  first:
    steps:
      - id: one
        uses: actions/humanitec/log
        with:
          message: hello
  second:
    needs: [first]
    steps:
      - uses: actions/humanitec/log
        with: {message: bye}
";

#[test]
fn mistakes_name_their_line() {
    assert!(parse(BASE).is_ok());
    let cases: &[(usize, &str, usize, &str)] = &[
        // (line replaced, new text, line reported, message part)
        (
            8,
            "        uses: actions/humanitec/nope",
            8,
            "unknown action `actions/humanitec/nope`",
        ),
        (
            8,
            "        uses: actions/humanitec/log@v9",
            8,
            "unknown action",
        ),
        (12, "    needs: [nobody]", 12, "needs unknown job `nobody`"),
        (
            12,
            "    needs: [second]",
            12,
            "`needs` forms a cycle: second → second",
        ),
        (
            10,
            "          message: ${{ inputs.x",
            10,
            "bad expression: unterminated",
        ),
        (
            10,
            "          message: ${{ env.x }}",
            10,
            "unknown name `env`",
        ),
        (
            10,
            "          message: ${{ steps.later.outputs.x }}",
            10,
            "no step `later`",
        ),
        (10, "          mesage: hello", 9, "requires `with.message`"),
        (
            7,
            "      - id: one\n        colour: red",
            8,
            "unknown key `colour`",
        ),
        (11, "  second:\n    retries: 3", 12, "unknown key `retries`"),
        (1, "name: [p]", 1, "name must be a string, not a list"),
        (
            3,
            "  pipeline_call: {inputs: {a: {type: text}}}",
            3,
            "unknown input type `text`",
        ),
        (
            3,
            "  pipeline_call: {inputs: {a: {type: number, default: x}}}",
            3,
            "default of input `a`",
        ),
        (
            3,
            "  artefact: {type: container, include: ['(']}",
            3,
            "not a valid regular expression",
        ),
        (
            3,
            "  artefact: {type: image, include: [x]}",
            3,
            "unknown artefact type",
        ),
        (3, "  cron: {}", 3, "unknown key `cron`"),
        (
            1,
            "name: p\ntimeout-minutes: 0",
            2,
            "timeout-minutes must be a whole number",
        ),
        (1, "name: p\nid: Not_Valid", 2, "id must match"),
        // No roles are delegated to a run: any permission is refused, never ignored.
        (
            1,
            "name: p\npermissions:\n  application: developer",
            3,
            "`permissions.application` is not supported",
        ),
        (
            1,
            "name: p\npermissions: {run-as: s-ci}",
            2,
            "`permissions.run-as` is not supported",
        ),
        (
            1,
            "name: p\npermissions:\n  env-types:\n    development: deployer",
            3,
            "`permissions.env-types` is not supported",
        ),
        (
            1,
            "name: p\npermissions:\n  application_role: owner",
            3,
            "a run acts with the roles of whoever started it",
        ),
        (
            1,
            "name: p\npermissions: owner",
            2,
            "permissions must be a mapping",
        ),
        (5, "  first!:", 5, "job id `first!`"),
        (
            7,
            "      - id: one\n        if: ${{ inputs.a == }}",
            8,
            "bad expression",
        ),
        (
            14,
            "      - uses: actions/humanitec/log\n        continue-on-error: maybe",
            15,
            "must be true or false",
        ),
        (1, "name: p\nname: q", 2, "duplicate key `name`"),
        (
            9,
            "        with:\n          message: [unclosed",
            11,
            "invalid YAML",
        ),
        (
            14,
            "      - uses: actions/gangplank/promote-image",
            15,
            "requires `with.destination`",
        ),
        (
            10,
            "          message: hello\n      - id: one\n        uses: actions/humanitec/log\n        with: {message: x}",
            11,
            "step id `one` is used twice in job `first`",
        ),
    ];
    for (replace, text, line, message) in cases {
        let mut lines: Vec<&str> = BASE.lines().collect();
        lines[replace - 1] = text;
        let yaml = lines.join("\n");
        let error = parse(&yaml).unwrap_err();
        assert!(error.message.contains(message), "{text}: {error}");
        assert_eq!(error.line, Some(*line), "{text}: {error}");
        assert!(
            error.to_string().starts_with(&format!("line {line}: ")),
            "{error}"
        );
    }
}

#[test]
fn steps_must_be_a_non_empty_list() {
    for (steps, message) in [
        ("{}", "steps must be a list"),
        ("[]", "needs at least one step"),
    ] {
        let yaml =
            format!("name: p\non: {{pipeline_call: {{}}}}\njobs:\n  a:\n    steps: {steps}\n");
        let error = parse(&yaml).unwrap_err();
        assert_eq!(error.line, Some(5), "{error}");
        assert!(error.message.contains(message), "{error}");
    }
}

#[test]
fn a_longer_cycle_is_named() {
    let yaml = "name: p\non: {pipeline_call: {}}\njobs:\n  a: {needs: c, steps: [{uses: actions/humanitec/log, with: {message: m}}]}\n  b: {needs: a, steps: [{uses: actions/humanitec/log, with: {message: m}}]}\n  c: {needs: b, steps: [{uses: actions/humanitec/log, with: {message: m}}]}\n";
    let error = parse(yaml).unwrap_err();
    assert_eq!(error.line, Some(4));
    assert!(error.message.contains("a → c → b → a"), "{error}");
}

#[test]
fn hostile_documents_are_refused_without_panicking() {
    let cases = [
        ("", "the definition is empty"),
        ("- a\n- b\n", "the definition must be a mapping"),
        ("name: p\non: {}\njobs: {}\n", "needs at least one trigger"),
        ("on: {pipeline_call: {}}\njobs: {}\n", "`name` is required"),
        ("name: !tagged x\n", "invalid YAML"),
        ("{{{{", "invalid YAML"),
        ("name: p\n\tbad: tab\n", "invalid YAML"),
    ];
    for (yaml, message) in cases {
        let error = parse(yaml).unwrap_err();
        assert!(error.message.contains(message), "{yaml:?}: {error}");
    }
    let deep = format!("name: {}{}\n", "[".repeat(500), "]".repeat(500));
    assert!(parse(&deep).unwrap_err().message.contains("nests deeper"));
    let leaf: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    let bomb = format!(
        "a: &l [{}]\nb: &m [{}]\nc: [{}]\n",
        leaf.join(","),
        vec!["*l"; 1000].join(","),
        vec!["*m"; 1000].join(",")
    );
    assert!(
        parse(&bomb)
            .unwrap_err()
            .message
            .contains("expands to more than")
    );
    let huge = "#".repeat(300 * 1024);
    assert!(parse(&huge).unwrap_err().message.contains("larger than"));
}
