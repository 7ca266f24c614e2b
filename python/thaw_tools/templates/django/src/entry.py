"""A single-file Django site served through WSGI: settings, views and URLs
live here; no database. Everything up to get_wsgi_application() runs once,
at deploy, so instances start with Django already set up."""
import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    # Replace before deploying: a real site keeps its key out of the source.
    SECRET_KEY="__NAME__-not-secret",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    # CommonMiddleware adds Content-Length. A site with browser forms should
    # also list django.middleware.csrf.CsrfViewMiddleware.
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
    INSTALLED_APPS=[],
    DATABASES={},
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpResponse, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from workers import WorkerEntrypoint, wsgi  # noqa: E402


def index(request):
    # the worker's env, as wsgi.fetch put it in the environ
    env = request.META["workers.env"]
    return HttpResponse(f"{env.MESSAGE}\n", content_type="text/plain")


def hello(request, name):
    return JsonResponse({"hello": name})


urlpatterns = [
    path("", index),
    path("hello/<str:name>", hello),
]

application = get_wsgi_application()


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return await wsgi.fetch(application, request, self.env)
