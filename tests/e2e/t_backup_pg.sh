#!/usr/bin/env bash
# t_backup_pg.sh — t_backup.sh on PostgreSQL: the instance's records in a
# real server (tests/pg), the backup made with pg_dump (custom format) while
# a mount saves, the database dropped and restored with pg_restore through
# `lamfs init --from-backup --db`.
# timeout: 600
BACKUP_STORE=pg exec bash "$(dirname "$0")/t_backup.sh" "$@"
