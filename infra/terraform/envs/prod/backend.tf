# State lives in a GCS bucket created once per organisation or project (docs/deploy.md); the bucket
# is passed at init time: terraform init -backend-config="bucket=<state bucket>".
terraform {
  backend "gcs" {
    prefix = "calsync/prod"
  }
}
