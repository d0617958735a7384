"""calsync's HTTP side: the one edge of the four Cloud Functions and the admin API (flask-openapi3)."""
