"""staff console: accounts, sign-in throttling, sessions, and the audit log

staff_accounts holds the console's accounts (argon2id hashes only, a role, the station
that anchors district and station staff's data scope). staff_login_failures keeps failed
sign-ins for the throttling window. console_sessions holds signed-in browsers by the hash
of their cookie token. audit_log is append-only: triggers refuse UPDATE and DELETE on
SQLite and on PostgreSQL alike (raised as integrity errors).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 03:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0007'
down_revision: Union[str, None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

APPEND_ONLY = 'audit_log is append-only'


def _append_only_triggers() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        # SQLSTATE 23000 (integrity_constraint_violation): the same IntegrityError as SQLite's ABORT.
        op.execute(f"""
            CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{APPEND_ONLY}' USING ERRCODE = 'integrity_constraint_violation';
            END
            $$""")
        op.execute('CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log '
                   'FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()')
    else:
        for event in ('UPDATE', 'DELETE'):
            op.execute(f"CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log "
                       f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END")


def _drop_append_only_triggers() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log')
        op.execute('DROP FUNCTION IF EXISTS audit_log_append_only()')
    else:
        for event in ('update', 'delete'):
            op.execute(f'DROP TRIGGER IF EXISTS audit_log_no_{event}')


def upgrade() -> None:
    op.create_table('staff_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=32), nullable=False),
    sa.Column('display_name', sa.String(length=50), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=10), nullable=False),
    sa.Column('station_id', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(role IN ('district', 'station')) = (station_id IS NOT NULL)",
                       name=op.f('ck_staff_accounts_station_by_role')),
    sa.CheckConstraint("password_hash LIKE '$argon2id$%'", name=op.f('ck_staff_accounts_password_hash')),
    sa.CheckConstraint("role IN ('admin', 'district', 'station', 'trainer')", name=op.f('ck_staff_accounts_role')),
    sa.CheckConstraint('username = lower(username)', name=op.f('ck_staff_accounts_username_lower')),
    sa.ForeignKeyConstraint(['station_id'], ['stations.id'], name=op.f('fk_staff_accounts_station_id_stations'),
                            ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_accounts')),
    sa.UniqueConstraint('username', name=op.f('uq_staff_accounts_username'))
    )
    op.create_index(op.f('ix_staff_accounts_station_id'), 'staff_accounts', ['station_id'], unique=False)

    op.create_table('staff_login_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username_key', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_login_failures'))
    )
    op.create_index('ix_staff_login_failures_address_failed_at', 'staff_login_failures',
                    ['address', 'failed_at'], unique=False)
    op.create_index(op.f('ix_staff_login_failures_failed_at'), 'staff_login_failures', ['failed_at'], unique=False)
    op.create_index('ix_staff_login_failures_username_key_failed_at', 'staff_login_failures',
                    ['username_key', 'failed_at'], unique=False)

    op.create_table('console_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('csrf_secret', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('created_at < expires_at', name=op.f('ck_console_sessions_expiry')),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_accounts.id'], name=op.f('fk_console_sessions_staff_id_staff_accounts'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_sessions'))
    )
    op.create_index(op.f('ix_console_sessions_expires_at'), 'console_sessions', ['expires_at'], unique=False)
    op.create_index(op.f('ix_console_sessions_staff_id'), 'console_sessions', ['staff_id'], unique=False)

    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('object_type', sa.String(length=40), nullable=False),
    sa.Column('object_id', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.String(length=200), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_accounts.id'], name=op.f('fk_audit_log_staff_id_staff_accounts'),
                            ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index(op.f('ix_audit_log_at'), 'audit_log', ['at'], unique=False)
    op.create_index('ix_audit_log_object_type_object_id', 'audit_log', ['object_type', 'object_id'], unique=False)
    op.create_index(op.f('ix_audit_log_staff_id'), 'audit_log', ['staff_id'], unique=False)
    _append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    op.drop_index(op.f('ix_audit_log_staff_id'), table_name='audit_log')
    op.drop_index('ix_audit_log_object_type_object_id', table_name='audit_log')
    op.drop_index(op.f('ix_audit_log_at'), table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_index(op.f('ix_console_sessions_staff_id'), table_name='console_sessions')
    op.drop_index(op.f('ix_console_sessions_expires_at'), table_name='console_sessions')
    op.drop_table('console_sessions')
    op.drop_index('ix_staff_login_failures_username_key_failed_at', table_name='staff_login_failures')
    op.drop_index(op.f('ix_staff_login_failures_failed_at'), table_name='staff_login_failures')
    op.drop_index('ix_staff_login_failures_address_failed_at', table_name='staff_login_failures')
    op.drop_table('staff_login_failures')
    op.drop_index(op.f('ix_staff_accounts_station_id'), table_name='staff_accounts')
    op.drop_table('staff_accounts')
