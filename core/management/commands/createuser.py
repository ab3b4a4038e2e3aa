"""createuser EMAIL --password P [--token T] [--organization NAME]: create or update a user
for scripts and tests, add it to an organization, and print its API token."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token

from core.models import Membership, Organization


class Command(BaseCommand):
    help = "Create (or update) a user with a known password and API token, and print the token."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--password", required=True)
        parser.add_argument("--token", help="API token to set (default: keep or generate one)")
        parser.add_argument("--organization", help="organization name (created if missing)")
        parser.add_argument("--superuser", action="store_true", help="also allow the Django admin")

    @transaction.atomic
    def handle(self, email, password, token=None, organization=None, superuser=False, **options):
        User = get_user_model()
        user, created = User.objects.get_or_create(username=email, defaults={"email": email})
        user.email = email
        user.set_password(password)
        if superuser:
            user.is_staff = user.is_superuser = True
        user.save()

        if organization or not user.memberships.exists():
            title = organization or f"{email}'s organization"
            org = Organization.objects.filter(title=title).order_by("id").first()
            if org is None:
                org = Organization.objects.create(title=title, created_by=user)
            Membership.objects.get_or_create(user=user, organization=org)

        if token:
            # The key is the token's primary key, so replacing it means a new row.
            Token.objects.filter(user=user).exclude(key=token).delete()
            if Token.objects.filter(key=token).exclude(user=user).exists():
                raise CommandError("That token belongs to another user")
            key = Token.objects.get_or_create(user=user, key=token)[0].key
        else:
            key = Token.objects.get_or_create(user=user)[0].key
        self.stderr.write(f"{'Created' if created else 'Updated'} user {email}")
        self.stdout.write(key)
