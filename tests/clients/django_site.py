"""A one-file Django site for tests/it/clients.rs: a tracker's edit of a time entry's description,
written by Django's ORM through PgBouncer, with the user taken from a header by Django's own
RemoteUserMiddleware and named to Clockwatch by the README's middleware (the file
clockwatch_middleware.py in $CLOCKWATCH_MIDDLEWARE_DIR, which the test writes from README.md).

Before serving it sets up its database as the owner, directly (PgBouncer is for the
application): Django's auth tables, users 1 (ann) and 2 (bob), whose ids are the example
schema's app_user ids, and the application role's rights on those tables. Then it serves on
127.0.0.1:$CLOCKWATCH_SITE_PORT with a thread per request, as the application role through
the pooler, until it is killed.
"""

import os
import socketserver
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import django
from django.conf import settings

env = os.environ
sys.path.insert(0, env["CLOCKWATCH_MIDDLEWARE_DIR"])


def database(user, port):
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": env["CLOCKWATCH_DB_NAME"],
        "USER": user,
        "HOST": env["CLOCKWATCH_DB_HOST"],
        "PORT": port,
        # PgBouncer in transaction mode gives each transaction whichever server session is
        # free: a server-side cursor, which Django keeps open across transactions, could be
        # looked for in another session (Django's documentation says to disable them).
        "DISABLE_SERVER_SIDE_CURSORS": True,
    }


settings.configure(
    DEBUG=False,
    SECRET_KEY="clockwatch test site, not a secret",
    ALLOWED_HOSTS=["127.0.0.1"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes"],
    DATABASES={
        "default": database(env["CLOCKWATCH_APP_ROLE"], env["CLOCKWATCH_POOLER_PORT"]),
        "owner": database("postgres", env["CLOCKWATCH_DB_PORT"]),
    },
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        f"{__name__}.HeaderUserMiddleware",
        # The README's, after everything that authenticates.
        "clockwatch_middleware.ClockwatchActorMiddleware",
    ],
    AUTHENTICATION_BACKENDS=[f"{__name__}.KnownUserBackend"],
    # Sessions in a signed cookie: no table, and no write of the pool's besides the test's own.
    SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
    USE_TZ=True,
)
django.setup()

from django.contrib.auth.backends import RemoteUserBackend  # noqa: E402
from django.contrib.auth.middleware import RemoteUserMiddleware  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import connection, connections, models  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from psycopg import sql  # noqa: E402


class HeaderUserMiddleware(RemoteUserMiddleware):
    """The user a front proxy has authenticated, from its X-User header."""

    header = "HTTP_X_USER"


class KnownUserBackend(RemoteUserBackend):
    """Only users the site has: an unknown name stays anonymous."""

    create_unknown_user = False


class TimeEntry(models.Model):
    """The example schema's app.time_entry, which the host application owns (the application
    role's search_path reaches it), mapped in part."""

    id = models.BigAutoField(primary_key=True)
    description = models.TextField()

    class Meta:
        app_label = "tracker"
        managed = False
        db_table = "time_entry"


def describe(request, entry_id):
    """Sets a time entry's description, as a tracker's edit form does, and answers which
    server session ran the request's transaction and which user the site saw."""
    entry = TimeEntry.objects.get(pk=entry_id)
    entry.description = request.POST["description"]
    entry.save(update_fields=["description"])
    with connection.cursor() as cursor:
        cursor.execute("select pg_backend_pid()")
        (backend,) = cursor.fetchone()
    return JsonResponse({"backend": backend, "user": request.user.pk})


urlpatterns = [path("entries/<int:entry_id>/description", describe)]


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """A thread per request: requests run side by side, each with its own database
    connection (Django's are per thread), all of them through the one pooler."""

    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


if __name__ == "__main__":
    call_command("migrate", database="owner", verbosity=0)
    User.objects.db_manager("owner").bulk_create(
        [User(id=1, username="ann"), User(id=2, username="bob")]
    )
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            sql.SQL("grant select, update on all tables in schema public to {}").format(
                sql.Identifier(env["CLOCKWATCH_APP_ROLE"])
            )
        )
    connections.close_all()
    server = make_server(
        "127.0.0.1",
        int(env["CLOCKWATCH_SITE_PORT"]),
        get_wsgi_application(),
        server_class=ThreadingWSGIServer,
        handler_class=QuietHandler,
    )
    server.serve_forever()
