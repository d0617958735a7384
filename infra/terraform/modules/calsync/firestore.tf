/**
 * Firestore (native mode) plus the composite indexes the state store's queries need and the TTL
 * policies of documents that expire. tests/infra derives the composite indexes the
 * store's queries need from calsync/adapters/firestore_store.py and checks each is declared here.
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
  }
  # One TTL policy (below): unknown-channel records. The daily cleanup job deletes the rest by
  # retention (Settings.mirror_retention_days, conflict_retention_days), and lock documents are
  # leases the code overwrites.
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

resource "google_firestore_index" "this" {
  for_each = local.firestore_indexes

  project     = var.project_id
  database    = google_firestore_database.this.name
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

# Channel ids that pushed to us but are not ours (FirestoreChannelStore.record_unknown_channel):
# callers choose them, so each record carries expires_at (Settings.unknown_channel_retention_s) and
# Firestore deletes it after that; no single-field index on the TTL timestamp (Google's advice).
resource "google_firestore_field" "unknown_channels_ttl" {
  project    = var.project_id
  database   = google_firestore_database.this.name
  collection = "${var.environment}_unknown_channels"
  field      = "expires_at"

  ttl_config {}

  index_config {}
}
