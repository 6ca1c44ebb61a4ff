-- Schema after the renames of the corpus rules (see schema_old.sql):
-- users.email -> email_address, users.name -> full_name,
-- orders.status -> state, billing.invoices.amt -> amount. The unique
-- constraint keeps its old name, as ALTER TABLE ... RENAME COLUMN would.
CREATE TABLE orgs (id serial PRIMARY KEY, name text NOT NULL, plan text);
CREATE TABLE users (id bigserial PRIMARY KEY, email_address text CONSTRAINT users_email_key UNIQUE, full_name text, org_id int REFERENCES orgs(id), created_at timestamptz NOT NULL DEFAULT now(), active boolean NOT NULL DEFAULT true);
CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint REFERENCES users(id), total numeric(10,2), state text, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE order_items (id bigserial PRIMARY KEY, order_id bigint REFERENCES orders(id), sku text, qty int, price numeric(10,2));
CREATE SCHEMA billing;
CREATE TABLE billing.invoices (id serial PRIMARY KEY, order_id bigint, amount numeric(10,2), note text);
CREATE SEQUENCE ticket_seq;
