//! What the pipeline-run routes share: stored rows to their Humanitec wire shapes, the
//! `Etag`/`If-Match`/`Idempotency-Key` headers, and repeated query filters (`status=a&status=b`,
//! also spelled `status[]=`).

use axum::http::{HeaderMap, HeaderValue, header};
use gangplank_api::pipeline_runs::{
    ApprovalResponse, PipelineApprovalRequest, PipelineJobPartial, PipelineRun, PipelineStep,
    PipelineStepLog,
};
use gangplank_core::limits::{MAX_FILTER_VALUES, MAX_REF_LEN};
use gangplank_core::timestamp::{format_millis, parse_rfc3339_millis};
use gangplank_store::{ApprovalView, JobRow, RunRow, StepLogRow, StepRow};

use crate::error::ApiError;

/// A Unix-ms time, or `None` for 0 (not yet).
fn when(millis: i64) -> Option<String> {
    (millis > 0).then(|| format_millis(millis))
}

fn seconds(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

pub fn run_view(row: RunRow) -> PipelineRun {
    let inputs = row.inputs_json();
    let env_ids = row.env_id_list();
    let waiting_for = row.waiting_for_map();
    PipelineRun {
        id: row.id,
        etag: row.etag,
        org_id: row.org_id,
        app_id: row.app_id,
        env_ids,
        pipeline_id: row.pipeline_id,
        pipeline_version: row.pipeline_version,
        status: row.status,
        status_message: row.status_message,
        created_at: format_millis(row.created_at),
        created_by: row.created_by,
        executing_at: when(row.executing_at),
        cancellation_requested_at: when(row.cancellation_requested_at),
        completed_at: when(row.completed_at),
        timeout_seconds: seconds(row.timeout_seconds),
        trigger: row.trigger_type,
        inputs,
        run_as: row.run_as,
        concurrency_group: (!row.concurrency_group.is_empty()).then_some(row.concurrency_group),
        waiting_for,
    }
}

pub fn job_view(run: &RunRow, row: JobRow) -> PipelineJobPartial {
    PipelineJobPartial {
        id: row.id,
        name: row.name,
        etag: row.etag,
        org_id: run.org_id.clone(),
        app_id: run.app_id.clone(),
        pipeline_id: run.pipeline_id.clone(),
        pipeline_version: run.pipeline_version.clone(),
        run_id: row.run_id,
        status: row.status,
        waiting_for: (!row.waiting_for.is_empty()).then_some(row.waiting_for),
        status_message: row.status_message,
        created_at: format_millis(row.created_at),
        updated_at: format_millis(row.updated_at),
        // A job is cancelled with its run: the run's request is the job's.
        cancellation_requested_at: when(run.cancellation_requested_at),
        completed_at: when(row.completed_at),
        timeout_seconds: seconds(row.timeout_seconds),
    }
}

pub fn step_view(row: StepRow) -> PipelineStep {
    let related_entities = row.related_map();
    PipelineStep {
        index: u32::try_from(row.idx).unwrap_or_default(),
        name: row.name,
        uses: row.uses,
        status: row.status,
        status_message: row.status_message,
        created_at: format_millis(row.created_at),
        completed_at: when(row.completed_at),
        timeout_seconds: seconds(row.timeout_seconds),
        related_entities,
    }
}

pub fn log_view(row: StepLogRow) -> PipelineStepLog {
    PipelineStepLog {
        at: format_millis(row.at),
        level: row.level,
        message: row.message,
    }
}

pub fn approval_view(view: ApprovalView) -> PipelineApprovalRequest {
    let a = view.approval;
    let required_approvals = a.policy().min_approvals;
    PipelineApprovalRequest {
        id: a.id,
        org_id: a.org_id,
        app_id: a.app_id,
        pipeline_id: a.pipeline_id,
        run_id: a.run_id,
        job_id: a.job_id,
        env_id: a.env_id,
        // The step's message unchanged (Humanitec's field); why it was cancelled is the
        // run's and step's status message.
        message: a.message,
        created_at: format_millis(a.created_at),
        status: a.status,
        approved_by: (!a.approved_by.is_empty()).then_some(a.approved_by),
        approved_at: when(a.approved_at),
        required_approvals,
        expires_at: when(a.expires_at),
        responses: view
            .responses
            .into_iter()
            .map(|r| ApprovalResponse {
                user: r.user_id,
                action: r.action,
                comment: r.comment,
                at: format_millis(r.at),
            })
            .collect(),
    }
}

/// `Etag: "<tag>"` (quoted, as RFC 9110 has it; the body's `etag` is the bare tag).
pub fn etag_header(tag: &str) -> (header::HeaderName, HeaderValue) {
    let value = HeaderValue::from_str(&format!("\"{tag}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("\"\""));
    (header::ETAG, value)
}

/// The bare tag of `If-Match`, quoted or not (`W/` and `*` as RFC 9110: `*` matches any).
pub fn if_match(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::invalid("If-Match", "is not text"))?
        .trim();
    if text == "*" {
        return Ok(None);
    }
    let tag = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    Ok(Some(tag.to_owned()))
}

/// The `Idempotency-Key` header, or empty (at most `MAX_REF_LEN` bytes, not one of the
/// artefact trigger's reserved keys).
pub fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(String::new());
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::invalid("Idempotency-Key", "is not text"))?
        .trim();
    gangplank_core::limits::check_len("Idempotency-Key", key, MAX_REF_LEN)?;
    if key.starts_with(gangplank_core::pipeline::trigger::ARTEFACT_KEY_PREFIX) {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            "must not start with \"artefact:\" (reserved for the artefact trigger's runs)",
        ));
    }
    Ok(key.to_owned())
}

/// Every value of a repeated query parameter `name` (or `name[]`), in order; 400 beyond
/// `MAX_FILTER_VALUES` of them (each becomes a database parameter).
pub fn repeated(query: Option<&str>, name: &str) -> Result<Vec<String>, ApiError> {
    let values = all_values(query, name);
    if values.len() > MAX_FILTER_VALUES {
        return Err(ApiError::invalid(
            name,
            format!("is given more than {MAX_FILTER_VALUES} times"),
        ));
    }
    Ok(values)
}

fn all_values(query: Option<&str>, name: &str) -> Vec<String> {
    let bracketed = format!("{name}[]");
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(key, _)| key == name || *key == bracketed)
        .map(|(_, value)| value.into_owned())
        .collect()
}

/// The one value of a query parameter, 400 when given twice.
pub fn single(query: Option<&str>, name: &str) -> Result<Option<String>, ApiError> {
    let mut values = all_values(query, name);
    match values.len() {
        0 => Ok(None),
        1 => Ok(values.pop()),
        _ => Err(ApiError::invalid(name, "is given more than once")),
    }
}

/// An RFC 3339 time parameter as Unix ms.
pub fn time_param(query: Option<&str>, name: &str) -> Result<Option<i64>, ApiError> {
    single(query, name)?
        .map(|text| {
            parse_rfc3339_millis(&text)
                .ok_or_else(|| ApiError::invalid(name, "must be an RFC 3339 date-time"))
        })
        .transpose()
}

/// A `true`/`false` parameter.
pub fn bool_param(query: Option<&str>, name: &str) -> Result<Option<bool>, ApiError> {
    single(query, name)?
        .map(|text| match text.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(ApiError::invalid(name, "must be true or false")),
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_filters_take_both_spellings() {
        let q = Some("status=failed&status%5B%5D=queued&app=a&page=x");
        assert_eq!(repeated(q, "status").unwrap(), ["failed", "queued"]);
        assert_eq!(repeated(q, "app").unwrap(), ["a"]);
        let many = vec!["app=a"; MAX_FILTER_VALUES + 1].join("&");
        assert!(
            repeated(Some(&many), "app").is_err(),
            "too many values: 400"
        );
        let most = vec!["app=a"; MAX_FILTER_VALUES].join("&");
        assert_eq!(
            repeated(Some(&most), "app").unwrap().len(),
            MAX_FILTER_VALUES
        );
        assert!(single(Some("env=a&env=b"), "env").is_err());
        assert_eq!(
            bool_param(Some("completed=true"), "completed").unwrap(),
            Some(true)
        );
        assert!(bool_param(Some("completed=yes"), "completed").is_err());
        assert!(time_param(Some("created_after=yesterday"), "created_after").is_err());
        assert!(
            time_param(Some("created_after=2026-01-02T03:04:05Z"), "created_after")
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn if_match_takes_quoted_weak_and_bare_tags() {
        let mut headers = HeaderMap::new();
        assert_eq!(if_match(&headers).unwrap(), None);
        for text in ["\"abc\"", "W/\"abc\"", "abc"] {
            headers.insert(header::IF_MATCH, HeaderValue::from_str(text).unwrap());
            assert_eq!(if_match(&headers).unwrap().as_deref(), Some("abc"));
        }
        headers.insert(header::IF_MATCH, HeaderValue::from_static("*"));
        assert_eq!(if_match(&headers).unwrap(), None);
    }
}
