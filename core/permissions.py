"""Organization-scoped access: querysets are filtered to the user's organizations, so an
object of another organization is simply not found (404) instead of forbidden."""


def organization_filter(user, prefix="organization"):
    """Filter kwargs that keep rows whose organization (reached through `prefix`) has `user`."""
    return {f"{prefix}__memberships__user": user}
