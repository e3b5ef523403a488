"""HTTP routes of the identity core: the admin API and the per-tenant login endpoints."""
