-- PostgreSQL twin of migrations/0003_confirmation_expectations.sql.
--
-- What a confirmation was about, so that answering it later deploys exactly that:
-- the deployment live when the question was asked, and (for a rollback) the sha it
-- would put back. If either changed, the answer is refused and the question asked anew.
ALTER TABLE confirmations ADD COLUMN expected_live BIGINT;
ALTER TABLE confirmations ADD COLUMN expected_target TEXT;
