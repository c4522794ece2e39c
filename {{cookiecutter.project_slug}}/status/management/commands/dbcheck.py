from django.core.management.base import BaseCommand, CommandError

from config.neon import describe
from status.probe import DATABASE_PROBLEMS, probe


class Command(BaseCommand):
    help = "Connect to the database once and report the server version, TLS and round-trip time."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=int, default=10, help="seconds to wait in all")

    def handle(self, *args, timeout, **options):
        try:
            result = probe(budget_seconds=timeout)
        except DATABASE_PROBLEMS as error:
            raise CommandError(describe(error)) from None
        self.stdout.write(
            f"PostgreSQL {result.server_version} at {result.host} "
            f"({'pooled' if result.pooled else 'direct'}), "
            f"TLS {'on' if result.tls else 'off'}, "
            f"channel binding {'required' if result.channel_binding == 'require' else 'optional'}, "
            f"connected in {result.connect_ms:.0f} ms, round trip {result.round_trip_ms:.1f} ms"
        )
