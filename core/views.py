"""Current-user endpoints: the API token (shown and rotated) and whoami."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import error_response

TOKEN = inline_serializer("Token", {"token": serializers.CharField()})


class CurrentUserTokenAPI(APIView):
    @extend_schema(responses=TOKEN)
    def get(self, request):
        token, _ = Token.objects.get_or_create(user=request.user)
        return Response({"token": token.key})

    @extend_schema(request=None, responses={201: TOKEN})
    def post(self, request):
        """Rotate: the old token stops working at once."""
        Token.objects.filter(user=request.user).delete()
        return Response({"token": Token.objects.create(user=request.user).key}, status=201)


class WhoAmIAPI(APIView):
    @extend_schema(
        responses=inline_serializer(
            "WhoAmI",
            {
                "id": serializers.IntegerField(),
                "email": serializers.EmailField(),
                "username": serializers.CharField(),
                "organizations": inline_serializer(
                    "OrganizationRef", {"id": serializers.IntegerField(), "title": serializers.CharField()}, many=True
                ),
            },
        )
    )
    def get(self, request):
        user = request.user
        return Response(
            {
                "id": user.id,
                "email": user.email,
                "username": user.username,
                "organizations": list(user.organizations.values("id", "title")),
            }
        )


def server_error(request):
    """Django's handler500 (errors outside DRF's views): the API's JSON envelope, not HTML."""
    return error_response(500, "Internal server error")


def not_found(request, exception):
    """A URL that matches no route: JSON like every other API answer, not Django's HTML page."""
    return error_response(404, "Not found.")
