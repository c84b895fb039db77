-- Runs once, when the PostgreSQL volume is first initialised: the Workspace service's own
-- role and database (Temporal's databases are created by deploy/temporal/setup-schema.sh).
-- Change the password (and WORKSPACE_DATABASE_URL in docker-compose.yml) outside development.
CREATE ROLE workspace LOGIN PASSWORD 'workspace';
CREATE DATABASE workspace OWNER workspace;
