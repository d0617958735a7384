project_id           = "agendador-calsync-stg"
region               = "southamerica-east1"
environment          = "stg"
control_calendar_id  = "REPLACE_WITH_STG_CONTROL_CALENDAR_ID@group.calendar.google.com"
admin_group          = "calsync-admins@example.com"
firestore_location   = "southamerica-east1"
deletion_protection  = true
enable_kms_token_key = true
