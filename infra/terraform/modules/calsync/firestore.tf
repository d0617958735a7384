/**
 * Firestore (native mode) plus the composite indexes the state store's queries need and the TTL
 * policies of documents that expire. Keep firestore_indexes in step with the queries the store
 * declares (tests/infra checks it).
 */

locals {
  # name => { collection, fields = [[field path, ASCENDING|DESCENDING], ...] }
  firestore_indexes = {
    channels_by_status_expiration = {
      collection = "channels"
      fields     = [["status", "ASCENDING"], ["expiration", "ASCENDING"]]
    }
    conflicts_by_status_detected = {
      collection = "conflicts"
      fields     = [["status", "ASCENDING"], ["detected_at", "DESCENDING"]]
    }
  }

  # collection group => timestamp field after which Firestore deletes the document.
  firestore_ttl_fields = {}
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

resource "google_firestore_field" "ttl" {
  for_each = local.firestore_ttl_fields

  project    = var.project_id
  database   = google_firestore_database.this.name
  collection = each.key
  field      = each.value

  ttl_config {}
}
