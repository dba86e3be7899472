"""Contentstack regions and their hosts (kept apart from the settings: ``--help`` lists them)."""

#: region → (analytics and trigger host, automations management host, CMA host)
REGION_HOSTS: dict[str, tuple[str, str, str]] = {
    "aws-na": ("app.contentstack.com", "automations-api.contentstack.com", "api.contentstack.io"),
    "aws-eu": (
        "eu-app.contentstack.com",
        "eu-prod-automations-api.contentstack.com",
        "eu-api.contentstack.com",
    ),
    "aws-au": (
        "au-app.contentstack.com",
        "au-prod-automations-api.contentstack.com",
        "au-api.contentstack.com",
    ),
    "azure-na": (
        "azure-na-app.contentstack.com",
        "azure-na-automations-api.contentstack.com",
        "azure-na-api.contentstack.com",
    ),
    "azure-eu": (
        "azure-eu-app.contentstack.com",
        "azure-eu-automations-api.contentstack.com",
        "azure-eu-api.contentstack.com",
    ),
    "gcp-na": (
        "gcp-na-app.contentstack.com",
        "gcp-na-automations-api.contentstack.com",
        "gcp-na-api.contentstack.com",
    ),
    "gcp-eu": (
        "gcp-eu-app.contentstack.com",
        "gcp-eu-automations-api.contentstack.com",
        "gcp-eu-api.contentstack.com",
    ),
}
