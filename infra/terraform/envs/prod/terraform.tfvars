project_id             = "agendador-calsync-prod"
region                 = "southamerica-east1"
environment            = "prod"
control_calendar_id    = "REPLACE_WITH_PROD_CONTROL_CALENDAR_ID@group.calendar.google.com"
admin_group            = "calsync-admins@example.com"
firestore_location     = "southamerica-east1"
deletion_protection    = true
enable_kms_token_key   = true
function_min_instances = { webhook = 1 }
