"""The public REST API, /api/v1/, one module per resource. Thin: parse input, read the row
through its access_<entity> selector (another team's id is a 404), call a service, serialise."""
