/**
 * Firestore (native mode) plus the composite indexes the state store's queries need and the TTL
 * policies of documents that expire. tests/infra derives the composite indexes the store's queries
 * need from calsync/adapters/firestore_store.py and checks each is declared here.
 */

locals {
  # name => { collection (id, scope COLLECTION), fields = [[field path, ASCENDING|DESCENDING], ...] }.
  # Only queries mixing an equality with a range/order on another field need one; equality-only
  # and single-field queries are served by Firestore's automatic indexes.
  firestore_indexes = {
    # FirestoreStateStore.system_events_overlapping: origin == "system" AND end > t, on
    # {env}_calendars/{key}/events.
    events_origin_end = {
      collection = "events"
      fields     = [["origin", "ASCENDING"], ["end", "ASCENDING"]]
    }
    # FirestoreStateStore cleanup of resolved conflicts: status == "resolved" AND resolved_at < cutoff,
    # on the environment's flat conflicts collection.
    conflicts_status_resolved_at = {
      collection = "${var.environment}_conflicts"
      fields     = [["status", "ASCENDING"], ["resolved_at", "ASCENDING"]]
    }
    # FirestoreStateStore allocations of a clinic in a period: clinic_id == c AND start in [from, to),
    # on the environment's flat allocations collection (publish planning).
    allocations_clinic_start = {
      collection = "${var.environment}_allocations"
      fields     = [["clinic_id", "ASCENDING"], ["start", "ASCENDING"]]
    }
    # Poll job: calendars never synced (last_synced_at == null) or last synced before a cutoff, paged
    # by (last_synced_at, key) cursors, on the environment's calendars collection.
    calendars_last_synced_key = {
      collection = "${var.environment}_calendars"
      fields     = [["last_synced_at", "ASCENDING"], ["key", "ASCENDING"]]
    }
    # Renew and poll jobs: calendars with a status (webhook_expired), paged by key.
    calendars_status_key = {
      collection = "${var.environment}_calendars"
      fields     = [["status", "ASCENDING"], ["key", "ASCENDING"]]
    }
    # Renew job: active channels expiring before now + margin, paged by (expiration, channel_id);
    # channels live in the push database.
    channels_status_expiration = {
      collection = "${var.environment}_channels"
      fields     = [["status", "ASCENDING"], ["expiration", "ASCENDING"], ["channel_id", "ASCENDING"]]
      push       = true
    }
  }

  # TTL policies on the field `expire_at` that calsync.model computes for each kind (retention in
  # docs/deploy.md): Firestore deletes a document about a day after it passed; the daily cleanup
  # job deletes the same ones sooner. Plans' `progress` documents are a subcollection (collection
  # group "progress"). Mirror events and resolved conflicts are deleted by the cleanup job by
  # Settings.mirror_retention_days / conflict_retention_days; lock documents are leases.
  ttl_collections = {
    plans       = "${var.environment}_plans"
    progress    = "progress"
    allocations = "${var.environment}_allocations"
    channels    = "${var.environment}_channels"
    free_busy   = "${var.environment}_free_busy"
    # Channel ids that pushed to us but are not ours: callers choose them, so each record expires
    # (Settings.unknown_channel_retention_s) besides the store's cap on how many are kept.
    unknown_channels = "${var.environment}_unknown_channels"
  }

  # The push state (calsync.adapters.firestore.base.PUSH_COLLECTIONS) is in its own database: the
  # internet-facing webhook may use that database only (iam.tf), never plans, allocations, mirrors
  # or conflicts.
  push_collections = ["channels", "unknown_channels"]
}

resource "google_firestore_field" "ttl" {
  for_each = local.ttl_collections

  project    = var.project_id
  database   = contains(local.push_collections, each.key) ? google_firestore_database.push.name : google_firestore_database.this.name
  collection = each.value
  field      = "expire_at"

  ttl_config {}
}

resource "google_firestore_database" "this" {
  project                           = var.project_id
  name                              = var.firestore_database
  location_id                       = var.firestore_location
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "PESSIMISTIC"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = var.deletion_protection ? "ABANDON" : "DELETE"
}

resource "google_firestore_database" "push" {
  project                           = var.project_id
  name                              = "${local.prefix}-push"
  location_id                       = var.firestore_location
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "PESSIMISTIC"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = var.deletion_protection ? "ABANDON" : "DELETE"
}

resource "google_firestore_index" "this" {
  for_each = local.firestore_indexes

  project     = var.project_id
  database    = lookup(each.value, "push", false) ? google_firestore_database.push.name : google_firestore_database.this.name
  collection  = each.value.collection
  query_scope = "COLLECTION"

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path = fields.value[0]
      order      = fields.value[1]
    }
  }
}
