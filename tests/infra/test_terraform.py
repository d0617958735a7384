"""Structural tests of infra/terraform (issue 7), on python-hcl2's parse of the configuration.

They pin down the wiring that lost peers their push channels or leaked access: four functions
with their own identities, only the webhook public, every scheduler job aimed at renew with OIDC
and the right body, every setting the code requires present, secrets referenced by name only,
and three environments that differ only in their tfvars.
"""

from __future__ import annotations

import re
from typing import Any, get_args

import pytest

from calsync.adapters.firestore.base import PUSH_COLLECTIONS
from calsync.config import Settings
from calsync.model import Allocation, ChannelRecord, FreeBusyState, Plan, PlanChunkProgress
from calsync.ports import ExpiringKind
from tests.infra.conftest import ENVS, FUNCTIONS, REPO, TF_ROOT, TfFolder, load_folder, parse_file

PUBLIC_MEMBERS = {"allUsers", "allAuthenticatedUsers"}
INVOKER = {t: f'${{google_service_account.invoker["{t}"].member}}' for t in ("sync", "renew", "publish")}
SCHEDULER = "${google_service_account.scheduler.member}"


def _string_list(value: Any, module: TfFolder) -> list[str]:
    """A list-valued attribute: a literal list, or local references / concat() of them and literals."""
    if isinstance(value, list):
        return [str(item) for item in value]
    assert isinstance(value, str), value
    items: list[str] = []
    for name in re.findall(r"local\.(\w+)", value):
        # A local may itself be a list or an expression of lists (e.g. a conditional): every item it may hold.
        items.extend(_string_list(module.locals[name], module))
    items.extend(re.findall(r'"([^"$]+)"', value))
    return items


def _cron_fires(expression: str) -> list[tuple[int, int]]:
    """(hour, minute) pairs a daily cron expression fires at (minute and hour fields only)."""
    minute, hour, dom, month, dow = expression.split()
    assert (dom, month, dow) == ("*", "*", "*"), f"{expression}: expected a daily pattern"

    def expand(spec: str, size: int) -> list[int]:
        if spec == "*":
            return list(range(size))
        if spec.startswith("*/"):
            return list(range(0, size, int(spec[2:])))
        return sorted(int(part) for part in spec.split(","))

    return [(h, m) for h in expand(hour, 24) for m in expand(minute, 60)]


def _gaps_minutes(fires: list[tuple[int, int]]) -> set[int]:
    """Distinct gaps between consecutive firings over a day, wrapping midnight."""
    times = sorted(h * 60 + m for h, m in fires)
    return {(b - a) % 1440 or 1440 for a, b in zip(times, [*times[1:], times[0]], strict=True)}


# --- functions and identities --------------------------------------------------------------------


def test_four_functions_match_the_entry_point_folders(calsync_module: TfFolder) -> None:
    """One Terraform function per functions/<name>/ folder, nothing more or less."""
    declared = set(calsync_module.locals["functions"])
    on_disk = {path.name for path in (REPO / "functions").iterdir() if path.is_dir()}
    assert declared == set(FUNCTIONS) == on_disk


def test_each_function_has_its_own_service_account(calsync_module: TfFolder, function_module: TfFolder) -> None:
    """The function module creates one account per instance and runs the function as it."""
    call = calsync_module.modules["function"]
    assert call["source"] == "../function"
    assert call["for_each"] == "${local.functions}"
    # account_id differs per instance (each.key) so no two functions share an identity.
    assert "${each.key}" in call["service_account_id"]
    accounts = function_module.resources["google_service_account"]
    assert list(accounts) == ["this"]
    function = function_module.resource("google_cloudfunctions2_function", "this")
    assert function["service_config"][0]["service_account_email"] == "${google_service_account.this.email}"
    # No function may fall back to the default compute account.
    assert "compute@developer.gserviceaccount.com" not in calsync_module.text + function_module.text


def test_source_object_is_named_by_the_zip_md5(function_module: TfFolder, calsync_module: TfFolder) -> None:
    """A changed bundle gets a new object name, so Terraform redeploys the function."""
    source = function_module.resource("google_storage_bucket_object", "source")
    assert "filemd5(var.source_zip)" in source["name"]
    function = function_module.resource("google_cloudfunctions2_function", "this")
    storage = function["build_config"][0]["source"][0]["storage_source"][0]
    assert storage["object"] == "${google_storage_bucket_object.source.name}"
    assert calsync_module.modules["function"]["source_zip"] == "${var.bundle_dir}/${each.key}.zip"


def test_only_the_webhook_is_public(calsync_module: TfFolder, function_module: TfFolder) -> None:
    """allUsers invokes the webhook only; sync and renew are also internal-ingress only."""
    functions = calsync_module.locals["functions"]
    for name, cfg in functions.items():
        public = PUBLIC_MEMBERS.intersection(cfg["invokers"])
        assert bool(public) == (name == "webhook"), f"{name}: invokers {cfg['invokers']}"
    assert functions["sync"]["ingress"] == "ALLOW_INTERNAL_ONLY"
    assert functions["renew"]["ingress"] == "ALLOW_INTERNAL_ONLY"
    # No other public member appears anywhere in the configuration (as a string literal).
    everything = "\n".join(path.read_text() for path in TF_ROOT.rglob("*.tf"))
    assert everything.count('"allUsers"') == 1
    assert '"allAuthenticatedUsers"' not in everything
    # Invocation is granted only through invoker_members, on the function's own service.
    invoker = function_module.resource("google_cloud_run_v2_service_iam_member", "invoker")
    assert invoker["for_each"] == "${toset(var.invoker_members)}"
    assert invoker["role"] == "roles/run.invoker"
    assert invoker["name"] == "${google_cloudfunctions2_function.this.name}"


def test_invokers_are_least_privilege(calsync_module: TfFolder) -> None:
    """sync: its Cloud Tasks invoker; renew: Cloud Scheduler (+ its fan-out tasks' invoker); publish: the
    admin group (+ its queue's invoker). One invoker account per target, none shared."""
    functions = calsync_module.locals["functions"]
    assert functions["sync"]["invokers"] == [INVOKER["sync"]]
    assert functions["renew"]["invokers"] == [SCHEDULER, INVOKER["renew"]]
    assert set(functions["publish"]["invokers"]) == {"group:${var.admin_group}", INVOKER["publish"]}
    assert calsync_module.modules["function"]["invoker_members"] == "${each.value.invokers}"
    invoker = calsync_module.resource("google_service_account", "invoker")
    assert invoker["for_each"] == '${toset(["sync", "renew", "publish"])}'
    # A function may act as (mint tasks for) the invokers of the targets it enqueues to, and no other.
    targets = {name: set(cfg["task_targets"]) for name, cfg in functions.items()}
    assert targets == {
        "webhook": {"sync"},
        "sync": {"sync"},
        "renew": {"sync", "renew"},
        "publish": {"publish", "sync"},
    }
    env = calsync_module.locals["common_env"]
    assert "CALSYNC_TASKS_INVOKER_SERVICE_ACCOUNT" not in env
    assert "google_service_account.invoker" in env["CALSYNC_TASKS_INVOKERS"]


def test_function_roles_are_least_privilege(calsync_module: TfFolder) -> None:
    """Project-wide only Firestore user, conditioned on the databases; queue, secret and actAs grants are
    per resource. The webhook's Firestore role is for the push database only."""
    for kind, _, body in calsync_module.iter_resources():
        if kind == "google_project_iam_member":
            assert body["role"] == "roles/datastore.user"
            condition = body["condition"][0]["expression"]
            assert 'each.key == "webhook" ? [google_firestore_database.push.name]' in condition
            assert "resource.name.startsWith" in condition
        assert kind not in {"google_project_iam_binding", "google_project_iam_policy"}
    enqueuer = calsync_module.resource("google_cloud_tasks_queue_iam_member", "enqueuer")
    assert enqueuer["role"] == "roles/cloudtasks.enqueuer"
    act_as = calsync_module.resource("google_service_account_iam_member", "tasks_invoker_act_as")
    assert act_as["role"] == "roles/iam.serviceAccountUser"
    assert act_as["service_account_id"] == "${google_service_account.invoker[each.value.target].name}"
    accessor = calsync_module.resource("google_secret_manager_secret_iam_member", "accessor")
    assert accessor["role"] == "roles/secretmanager.secretAccessor"
    # The webhook answers Google from Firestore state alone: it reads no secret.
    assert _string_list(calsync_module.locals["functions"]["webhook"]["secrets"], calsync_module) == []


# --- scheduler -----------------------------------------------------------------------------------


def test_scheduler_jobs_have_the_right_schedule_and_body(calsync_module: TfFolder) -> None:
    """renew every 6 h, poll every 10 min, cleanup daily, availability hourly, each with its {"job": ...} body."""
    jobs = calsync_module.locals["scheduler_jobs"]
    assert set(jobs) == {"renew", "poll", "cleanup", "availability"}
    for name, job in jobs.items():
        assert job["body"] == {"job": name}
    assert _gaps_minutes(_cron_fires(jobs["renew"]["schedule"])) == {360}
    assert _gaps_minutes(_cron_fires(jobs["poll"]["schedule"])) == {10}
    assert len(_cron_fires(jobs["cleanup"]["schedule"])) == 1
    assert _gaps_minutes(_cron_fires(jobs["availability"]["schedule"])) == {60}
    # The code names poll tasks per interval: it must know the real period.
    env = calsync_module.locals["common_env"]
    assert env["CALSYNC_POLL_INTERVAL_S"] == "${tostring(local.poll_interval_s)}"
    assert calsync_module.locals["poll_interval_s"] == 10 * 60
    # A quiet calendar is polled well before the 1 h "no successful sync" alert would fire.
    assert calsync_module.locals["poll_stale_s"] + calsync_module.locals["poll_interval_s"] < 3600


def test_scheduler_jobs_target_renew_with_oidc(calsync_module: TfFolder) -> None:
    """Every job POSTs its JSON body to renew with an OIDC token of the scheduler account."""
    job = calsync_module.resource("google_cloud_scheduler_job", "this")
    assert job["for_each"] == "${local.scheduler_jobs}"
    target = job["http_target"][0]
    renew_url = '${local.function_urls["renew"]}'
    assert target["uri"] == renew_url
    assert target["http_method"] == "POST"
    assert target["body"] == "${base64encode(jsonencode(each.value.body))}"
    assert target["headers"] == {"Content-Type": "application/json"}
    oidc = target["oidc_token"][0]
    assert oidc == {
        "service_account_email": "${google_service_account.scheduler.email}",
        "audience": renew_url,
    }
    urls = calsync_module.locals["function_urls"]
    assert urls.startswith("${{for name in")
    assert "https://" in urls
    assert "cloudfunctions.net/${local.prefix}-${name}" in urls


# --- settings and secrets ------------------------------------------------------------------------


def _required_env_vars() -> set[str]:
    prefix = str(Settings.model_config.get("env_prefix", "")).upper()
    return {f"{prefix}{name.upper()}" for name, info in Settings.model_fields.items() if info.is_required()}


def test_every_required_setting_is_set(calsync_module: TfFolder) -> None:
    """Each CALSYNC_* variable Settings requires (no default) is in every function's environment."""
    env = calsync_module.locals["common_env"]
    required = _required_env_vars()
    assert required, "Settings declares no required field?"
    assert required <= set(env), f"missing: {sorted(required - set(env))}"
    assert calsync_module.modules["function"]["env_vars"] == "${local.common_env}"


def test_every_env_var_names_a_setting_and_carries_no_secret(calsync_module: TfFolder) -> None:
    """No typo'd variable (silently ignored by Settings) and no secret value in plain env."""
    prefix = str(Settings.model_config.get("env_prefix", "")).upper()
    fields = Settings.model_fields
    env = calsync_module.locals["common_env"]
    for key in env:
        assert key.startswith(prefix), key
        name = key[len(prefix) :].lower()
        assert name in fields, f"{key} is not a Settings field"
        assert "SecretStr" not in str(fields[name].annotation), f"{key} would put a secret value in state"
    assert env["CALSYNC_SECRETS_BACKEND"] == "secret_manager"
    assert env["CALSYNC_CALENDAR_CREDENTIALS"] == "delegated"


def test_calendar_identity_is_keyless_and_only_calendar_callers_sign(calsync_module: TfFolder) -> None:
    """No key resource or key secret exists; sync, renew and publish (not the webhook) may sign as it."""
    assert "google_service_account_key" not in calsync_module.text
    assert "sa-key" not in calsync_module.text
    env = calsync_module.locals["common_env"]
    assert env["CALSYNC_DELEGATION_SERVICE_ACCOUNT"] == "${google_service_account.calendar.email}"
    signer = calsync_module.resource("google_service_account_iam_member", "calendar_signer")
    assert signer["role"] == "roles/iam.serviceAccountTokenCreator"
    assert signer["service_account_id"] == "${google_service_account.calendar.name}"
    assert signer["for_each"] == "${toset(local.calendar_callers)}"
    assert _string_list(calsync_module.locals["calendar_callers"], calsync_module) == ["sync", "renew", "publish"]


def test_every_secret_referenced_exists(calsync_module: TfFolder, function_module: TfFolder) -> None:
    """Secrets named by functions, env vars and IAM are all declared; none has a version in state."""
    declared = set(calsync_module.locals["secrets"])
    for name, cfg in calsync_module.locals["functions"].items():
        used = set(_string_list(cfg["secrets"], calsync_module))
        assert used <= declared, f"{name} reads undeclared secrets {used - declared}"
    referenced = set(re.findall(r'google_secret_manager_secret\.this\["(\w+)"\]', calsync_module.text))
    assert referenced, "no secret is referenced at all?"
    assert referenced <= declared
    secret = calsync_module.resource("google_secret_manager_secret", "this")
    assert secret["for_each"] == "${local.created_secrets}"
    # Values are added out of band; a version resource would put the value in state.
    for folder in (calsync_module, function_module):
        assert "google_secret_manager_secret_version" not in folder.text
    # Each secret-name setting points at a declared secret.
    env = calsync_module.locals["common_env"]
    for setting in (name for name in Settings.model_fields if name.startswith("secret_")):
        key = f"CALSYNC_{setting.upper()}"
        assert key in env, f"{key} not set"
        # A secret that is not created (the token key under KMS) is named by nothing.
        match = re.fullmatch(
            r'\$\{(?:var\.enable_kms_token_key \? "" : )?google_secret_manager_secret\.this\["(\w+)"\]\.secret_id\}',
            env[key],
        )
        assert match, env[key]
        assert match.group(1) in declared, env[key]


# --- queues, firestore, monitoring ---------------------------------------------------------------


def test_sync_queue_is_throttled_from_the_calendar_quota(calsync_module: TfFolder) -> None:
    """Rates derive from the per-user quota variable; retries back off and are bounded."""
    quota = calsync_module.variables["calendar_user_requests_per_minute"]
    assert quota["default"] == 600
    queue = calsync_module.resource("google_cloud_tasks_queue", "sync")
    limits = queue["rate_limits"][0]
    assert "local.calendar_requests_per_s" in limits["max_dispatches_per_second"]
    assert "local.calendar_requests_per_s" in limits["max_concurrent_dispatches"]
    assert calsync_module.locals["calendar_requests_per_s"] == "${var.calendar_user_requests_per_minute / 60}"
    for name in ("sync", "publish"):
        retry = calsync_module.resource("google_cloud_tasks_queue", name)["retry_config"][0]
        assert retry["max_attempts"] > 1
        assert int(retry["min_backoff"].rstrip("s")) < int(retry["max_backoff"].rstrip("s"))


def test_firestore_is_native_with_indexes_on_it(calsync_module: TfFolder) -> None:
    """One native database; every composite index and TTL field lives on it."""
    database = calsync_module.resource("google_firestore_database", "this")
    assert database["type"] == "FIRESTORE_NATIVE"
    assert calsync_module.resource("google_firestore_database", "push")["type"] == "FIRESTORE_NATIVE"
    index = calsync_module.resource("google_firestore_index", "this")
    push_or_main = "google_firestore_database.push.name : google_firestore_database.this.name"
    assert push_or_main in index["database"]
    ttl = calsync_module.resource("google_firestore_field", "ttl")
    assert push_or_main in ttl["database"]
    # Exactly the collections the store keeps on its push client live in the push database.
    assert set(calsync_module.locals["push_collections"]) == PUSH_COLLECTIONS
    pushed = {spec["collection"] for spec in calsync_module.locals["firestore_indexes"].values() if spec.get("push")}
    assert pushed == {"${var.environment}_channels"}
    for spec in calsync_module.locals["firestore_indexes"].values():
        assert len(spec["fields"]) >= 2, "single-field indexes are automatic; only composites belong here"
        assert all(order in {"ASCENDING", "DESCENDING"} for _, order in spec["fields"])


def test_ttl_policies_cover_every_expiring_kind(calsync_module: TfFolder) -> None:
    """Each kind the cleanup deletes by ``expire_at`` has a TTL policy on that field, plus plans' progress."""
    kinds = set(get_args(ExpiringKind))
    collections = calsync_module.locals["ttl_collections"]
    # progress: plans' subcollection, deleted with its plan by the cleanup job.
    assert set(collections) == kinds | {"progress"}
    for kind in kinds:
        assert collections[kind] == "${var.environment}_" + kind
    ttl = calsync_module.resource("google_firestore_field", "ttl")
    assert (ttl["field"], ttl["for_each"]) == ("expire_at", "${local.ttl_collections}")
    assert ttl["ttl_config"] == [{}]
    for model in (Plan, PlanChunkProgress, Allocation, ChannelRecord, FreeBusyState):
        assert "expire_at" in model.model_computed_fields, model.__name__


def test_data_access_audit_logs_outside_dev(calsync_module: TfFolder) -> None:
    audit = calsync_module.resource("google_project_iam_audit_config", "data_access")
    assert "datastore.googleapis.com" in audit["for_each"]
    assert "secretmanager.googleapis.com" in audit["for_each"]
    assert 'var.environment == "dev" ? toset([])' in audit["for_each"]
    assert {c["log_type"] for c in audit["audit_log_config"]} == {"DATA_READ", "DATA_WRITE"}


EXPECTED_LOG_MESSAGES = {
    "sync.completed",
    "sync.failed",
    "sync.full_resync",
    "calendar.rate_limited",
    "webhook.rejected",
    "conflict.opened",
    "channel.expiring_soon",
    "writer.locked",
}


def test_log_metrics_and_alerts(calsync_module: TfFolder) -> None:
    """Metrics count the log messages the code emits; the alerts of issue 7 and the writer lockout exist."""
    messages: set[str] = set()
    for metric in calsync_module.locals["log_metrics"].values():
        messages.update(re.findall(r'"([a-z_]+\.[a-z_]+)"', metric["filter"]))
    assert messages == EXPECTED_LOG_MESSAGES
    alerts = calsync_module.resources["google_monitoring_alert_policy"]
    expected = {"channel_expiring", "sync_failure_ratio", "no_successful_sync", "needs_reauth", "writer_locked"}
    assert set(alerts) == expected
    reauth = alerts["needs_reauth"]["conditions"][0]["condition_threshold"][0]
    assert "needs_reauth" in reauth["filter"]
    assert "needs_reauth" in calsync_module.locals["log_metrics"]["needs_reauth"]["filter"]
    locked = alerts["writer_locked"]["conditions"][0]["condition_threshold"][0]
    assert "writer_locked" in locked["filter"]
    assert locked["aggregations"][0]["group_by_fields"] == ["metric.label.writer_index"]
    absent = alerts["no_successful_sync"]["conditions"][0]["condition_absent"][0]
    assert absent["duration"] == "3600s"
    assert absent["aggregations"][0]["group_by_fields"] == ["metric.label.calendar_key"]
    ratio = alerts["sync_failure_ratio"]["conditions"][0]["condition_threshold"][0]
    assert "sync_runs" in ratio["denominator_filter"]


# --- modules and environments --------------------------------------------------------------------


@pytest.mark.parametrize("folder", ["modules/function", "modules/calsync", *(f"envs/{env}" for env in ENVS)])
def test_variables_are_typed_and_described_and_provider_pinned(folder: str) -> None:
    """CFT style: every variable has a type and a description; versions.tf bounds the provider."""
    module = load_folder(TF_ROOT / folder)
    assert module.variables, f"{folder} declares no variables"
    for name, body in module.variables.items():
        assert body.get("type"), f"{folder}: variable {name} has no type"
        assert body.get("description"), f"{folder}: variable {name} has no description"
    for name, body in module.outputs.items():
        assert body.get("description"), f"{folder}: output {name} has no description"
    providers = [block["required_providers"][0] for block in module.terraform if "required_providers" in block]
    assert providers, f"{folder}: no required_providers"
    version = providers[0]["google"]["version"]
    assert re.fullmatch(r">= ?[\d.]+, ?< ?[\d.]+", version), f"{folder}: google provider not range-pinned"


def test_envs_call_the_same_module_with_only_inputs_differing(env_roots: dict[str, TfFolder]) -> None:
    """One module call, identical across environments; backends differ only by prefix."""
    calls = {env: root.modules for env, root in env_roots.items()}
    for env, modules in calls.items():
        assert list(modules) == ["calsync"], env
        assert modules["calsync"]["source"] == "../../modules/calsync"
        assert not root_resources(env_roots[env]), f"{env} declares resources outside the module"
        backend = env_roots[env].terraform[0]["backend"][0]["gcs"]
        assert backend == {"prefix": f"calsync/{env}"}
    assert calls["dev"] == calls["stg"] == calls["prod"]
    variables = {env: root.variables for env, root in env_roots.items()}
    assert variables["dev"] == variables["stg"] == variables["prod"]


def root_resources(root: TfFolder) -> list[str]:
    """Resources declared directly in an env root."""
    return [f"{kind}.{name}" for kind, name, _ in root.iter_resources()]


@pytest.mark.parametrize("env", ENVS)
def test_tfvars_set_every_required_input(env: str, env_roots: dict[str, TfFolder], calsync_module: TfFolder) -> None:
    """tfvars names the environment and sets every input without a default; the call passes the module's."""
    root = env_roots[env]
    tfvars = parse_file(TF_ROOT / "envs" / env / "terraform.tfvars")
    assert tfvars["environment"] == env
    for name, body in root.variables.items():
        if "default" not in body:
            assert name in tfvars, f"{env}: terraform.tfvars does not set {name}"
    assert set(tfvars) <= set(root.variables), f"{env}: tfvars sets undeclared inputs"
    call = root.modules["calsync"]
    for name, body in calsync_module.variables.items():
        if "default" not in body:
            assert name in call, f"{env}: module call does not pass {name}"
    assert set(call) - {"source"} <= set(calsync_module.variables)


def test_webhook_serves_concurrent_requests_on_one_vcpu(calsync_module: TfFolder, function_module: TfFolder) -> None:
    """The webhook waits on Firestore and Cloud Tasks: one instance takes several requests at once
    (2nd gen allows concurrency above 1 only with at least 1 vCPU), and gunicorn runs as many threads."""
    functions = calsync_module.locals["functions"]
    webhook = functions["webhook"]
    assert int(webhook["concurrency"]) > 1
    assert float(webhook["cpu"]) >= 1
    for name, spec in functions.items():
        assert int(spec["concurrency"]) == 1 or float(spec["cpu"]) >= 1, name
    call = calsync_module.modules["function"]
    assert call["concurrency"] == "${each.value.concurrency}"
    assert call["available_cpu"] == "${each.value.cpu}"
    service = function_module.resource("google_cloudfunctions2_function", "this")["service_config"][0]
    assert service["max_instance_request_concurrency"] == "${var.concurrency}"
    assert "THREADS = tostring(var.concurrency)" in str(service["environment_variables"])


def test_unknown_channel_records_expire_by_a_ttl_policy(calsync_module: TfFolder) -> None:
    """The field the store writes (UnknownChannel.expire_at) is the TTL field of the store's collection."""
    from calsync.model import UnknownChannel

    assert calsync_module.locals["ttl_collections"]["unknown_channels"] == "${var.environment}_unknown_channels"
    field = calsync_module.resource("google_firestore_field", "ttl")
    assert field["field"] in UnknownChannel.model_fields
    assert "ttl_config" in field


def test_refresh_tokens_are_encrypted_with_kms_where_enabled(calsync_module: TfFolder) -> None:
    """With KMS, the functions get the key's name and its encrypt/decrypt role, and no token key secret:
    it is neither created nor named to the functions."""
    env = calsync_module.locals["common_env"]
    assert env["CALSYNC_KMS_TOKEN_KEY"] == '${var.enable_kms_token_key ? google_kms_crypto_key.token[0].id : ""}'
    assert env["CALSYNC_SECRET_TOKEN_KEY"] == (
        '${var.enable_kms_token_key ? "" : google_secret_manager_secret.this["token_key"].secret_id}'
    )
    assert calsync_module.locals["created_secrets"] == (
        '${var.enable_kms_token_key ? {for name, secret_id in local.secrets : name => secret_id if name != "token_key"}'
        " : local.secrets}"
    )
    assert calsync_module.locals["calendar_secrets"] == (
        '${var.enable_kms_token_key ? ["oauth_client"] : ["oauth_client", "token_key"]}'
    )
    grant = calsync_module.resource("google_kms_crypto_key_iam_member", "token_key_user")
    assert grant["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
    functions = calsync_module.locals["functions"]
    users = {name for name, cfg in functions.items() if "oauth_client" in _string_list(cfg["secrets"], calsync_module)}
    assert users == {"sync", "renew", "publish"}, "only the functions calling Calendar touch clinics' tokens"
