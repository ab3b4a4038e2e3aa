"""Console pages: Django's session login and logout, and the page shells. A shell renders
the layout, the navigation, the CSRF token and the ids from its URL; its ES module
(static/console/) reads everything else from the REST API, which checks the organization."""

import functools

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

#: Console pages run only their own scripts (no inline script, no other origin). Images and
#: media may come from a storage's presigned URLs (another origin); HTML task data is shown
#: in sandboxed srcdoc frames, which inherit this policy.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob: http: https:",
        "media-src 'self' blob: http: https:",
        "frame-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def console_page(view):
    """Adds the console's Content-Security-Policy to a page's answer."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    return wrapped


def shell(template, script):
    """A page shell: logged-in users only (others go to the login page), the CSRF cookie
    set, the URL's ids handed to `script` as data attributes."""

    @console_page
    @login_required
    @ensure_csrf_cookie
    def page(request, **ids):
        return render(request, f"console/{template}", {"script": f"console/{script}", "ids": ids})

    return page


projects = shell("projects.html", "projects.js")
project = shell("project.html", "project.js")
task = shell("task.html", "task.js")


class LoginView(auth_views.LoginView):
    template_name = "console/login.html"
    redirect_authenticated_user = True


login = console_page(LoginView.as_view())
logout = console_page(auth_views.LogoutView.as_view())
