"""Current-user endpoints: the API token (shown and rotated) and whoami."""

from rest_framework.authtoken.models import Token
from rest_framework.response import Response
from rest_framework.views import APIView


class CurrentUserTokenAPI(APIView):
    def get(self, request):
        token, _ = Token.objects.get_or_create(user=request.user)
        return Response({"token": token.key})

    def post(self, request):
        """Rotate: the old token stops working at once."""
        Token.objects.filter(user=request.user).delete()
        return Response({"token": Token.objects.create(user=request.user).key}, status=201)


class WhoAmIAPI(APIView):
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
