project_id          = "agendador-calsync-dev"
region              = "southamerica-east1"
environment         = "dev"
control_calendar_id = "REPLACE_WITH_DEV_CONTROL_CALENDAR_ID@group.calendar.google.com"
admin_group         = "calsync-admins-dev@example.com"
firestore_location  = "southamerica-east1"
deletion_protection = false
