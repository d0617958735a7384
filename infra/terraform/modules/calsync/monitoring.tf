/**
 * Log-based metrics on the functions' JSON logs (jsonPayload.message is the event name the code
 * logs; see docs/deploy.md for the list) and the alert policies built on them.
 */

locals {
  log_base_filter = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=~\"^${local.prefix}-\""

  # metric key => the message(s) it counts and the JSON field kept as a label.
  log_metrics = {
    sync_completed = {
      description = "Successful sync runs (one per calendar per run)."
      filter      = "jsonPayload.message=\"sync.completed\""
      label       = "calendar_key"
    }
    sync_failed = {
      description = "Failed sync runs."
      filter      = "jsonPayload.message=\"sync.failed\""
      label       = "calendar_key"
    }
    sync_runs = {
      description = "Finished sync runs, successful or failed (denominator of the failure ratio)."
      filter      = "jsonPayload.message=(\"sync.completed\" OR \"sync.failed\")"
      label       = "calendar_key"
    }
    full_resyncs = {
      description = "Full resyncs after a 410 (sync token gone)."
      filter      = "jsonPayload.message=\"sync.full_resync\""
      label       = "calendar_key"
    }
    rate_limited = {
      description = "Calendar API rate-limit hits (403 rateLimitExceeded/userRateLimitExceeded, 429)."
      filter      = "jsonPayload.message=\"calendar.rate_limited\""
      label       = "calendar_key"
    }
    webhook_rejected = {
      description = "Push notifications rejected by the webhook (unknown channel, bad token)."
      filter      = "jsonPayload.message=\"webhook.rejected\""
      label       = "reason"
    }
    conflicts_opened = {
      description = "Conflicts opened between Google and the backend."
      filter      = "jsonPayload.message=\"conflict.opened\""
      label       = "calendar_key"
    }
    needs_reauth = {
      description = "Syncs that found a clinic's Google connection revoked or expired (invalid_grant)."
      filter      = "jsonPayload.message=\"sync.failed\" AND jsonPayload.status=\"needs_reauth\""
      label       = "calendar_key"
    }
    channel_expiring = {
      description = "Push channels found expiring within 12 h (renewal has failed at least once)."
      filter      = "jsonPayload.message=\"channel.expiring_soon\""
      label       = "calendar_key"
    }
    writer_locked = {
      description = "A writer answered 403 quotaExceeded: Google made the account read-only (usage limits); its writes wait."
      filter      = "jsonPayload.message=\"writer.locked\""
      label       = "writer_index"
    }
  }
}

resource "google_logging_metric" "this" {
  for_each = local.log_metrics

  project     = var.project_id
  name        = "${replace(local.prefix, "-", "_")}_${each.key}"
  description = each.value.description
  filter      = "${local.log_base_filter} AND ${each.value.filter}"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"

    labels {
      key         = each.value.label
      value_type  = "STRING"
      description = "The log line's ${each.value.label} field."
    }
  }

  label_extractors = {
    (each.value.label) = "EXTRACT(jsonPayload.${each.value.label})"
  }
}

locals {
  metric_type = { for key, metric in google_logging_metric.this : key => "logging.googleapis.com/user/${metric.name}" }
}

resource "google_monitoring_alert_policy" "channel_expiring" {
  project               = var.project_id
  display_name          = "calsync ${var.environment}: push channel expiring in < 12 h"
  combiner              = "OR"
  notification_channels = var.alert_notification_channels
  user_labels           = local.labels

  documentation {
    content   = "A push channel expires within 12 hours: renewal (every 6 h, 24 h margin) has failed. Check the renew function's logs (job=renew) and the calendar's status."
    mime_type = "text/markdown"
  }

  conditions {
    display_name = "channel.expiring_soon logged"
    condition_threshold {
      filter          = "metric.type=\"${local.metric_type["channel_expiring"]}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.calendar_key"]
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }
}

resource "google_monitoring_alert_policy" "needs_reauth" {
  project               = var.project_id
  display_name          = "calsync ${var.environment}: a calendar needs its clinic to reconnect Google"
  combiner              = "OR"
  notification_channels = var.alert_notification_channels
  user_labels           = local.labels

  documentation {
    content   = "Google refused a clinic's refresh token (invalid_grant: access removed, password changed, token expired). Its calendars are `needs_reauth` in GET /health, which names the clinic; reconnect with `calsync connect --clinic <id>` (POST /clinics/{id}/connection) and open the link as the clinic's Google account."
    mime_type = "text/markdown"
  }

  conditions {
    display_name = "sync.failed with status needs_reauth logged"
    condition_threshold {
      filter          = "metric.type=\"${local.metric_type["needs_reauth"]}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.calendar_key"]
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }
}

resource "google_monitoring_alert_policy" "sync_failure_ratio" {
  project               = var.project_id
  display_name          = "calsync ${var.environment}: sync failure ratio above 20%"
  combiner              = "OR"
  notification_channels = var.alert_notification_channels
  user_labels           = local.labels

  documentation {
    content   = "More than 20% of sync runs failed over 30 minutes. Check sync.failed lines (error_type, calendar_key) in the sync function's logs."
    mime_type = "text/markdown"
  }

  conditions {
    display_name = "sync.failed / (sync.completed + sync.failed) > 0.2"
    condition_threshold {
      filter             = "metric.type=\"${local.metric_type["sync_failed"]}\" AND resource.type=\"cloud_run_revision\""
      denominator_filter = "metric.type=\"${local.metric_type["sync_runs"]}\" AND resource.type=\"cloud_run_revision\""
      comparison         = "COMPARISON_GT"
      threshold_value    = 0.2
      duration           = "0s"

      aggregations {
        alignment_period     = "1800s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      denominator_aggregations {
        alignment_period     = "1800s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }
}

resource "google_monitoring_alert_policy" "no_successful_sync" {
  project               = var.project_id
  display_name          = "calsync ${var.environment}: a calendar has not synced for over 1 h"
  combiner              = "OR"
  notification_channels = var.alert_notification_channels
  user_labels           = local.labels

  documentation {
    content   = "A calendar that used to sync has logged no sync.completed for an hour, although the poll job enqueues a sync of every calendar every 10 minutes. Check the calendar's status (needs_reauth, error) and the sync queue."
    mime_type = "text/markdown"
  }

  conditions {
    display_name = "no sync.completed per calendar_key for 1 h"
    condition_absent {
      filter   = "metric.type=\"${local.metric_type["sync_completed"]}\" AND resource.type=\"cloud_run_revision\""
      duration = "3600s"

      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.calendar_key"]
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }
}

resource "google_monitoring_alert_policy" "writer_locked" {
  project               = var.project_id
  display_name          = "calsync ${var.environment}: a writer is in Google's read-only mode (usage limits)"
  combiner              = "OR"
  notification_channels = var.alert_notification_channels
  user_labels           = local.labels

  documentation {
    content   = "A writer of the pool answered 403 quotaExceeded (Calendar usage limits exceeded): Google keeps the account read-only for hours. calsync waits it out (its publish and provisioning tasks are put back at the lock's end; syncs go on) and probes once per lockout. GET /health lists locked_writers. Frequent lockouts mean the budgets (CALSYNC_USAGE_*) are too high or the pool too small: add writers (var.writers)."
    mime_type = "text/markdown"
  }

  conditions {
    display_name = "writer.locked logged"
    condition_threshold {
      filter          = "metric.type=\"${local.metric_type["writer_locked"]}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.writer_index"]
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }
}
