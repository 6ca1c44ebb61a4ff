-- Schema the rewrite corpus is written against: the application's view,
-- before the renames. schema_new.sql is the same with the renamed columns.
CREATE TABLE orgs (id serial PRIMARY KEY, name text NOT NULL, plan text);
CREATE TABLE users (id bigserial PRIMARY KEY, email text UNIQUE, name text, org_id int REFERENCES orgs(id), created_at timestamptz NOT NULL DEFAULT now(), active boolean NOT NULL DEFAULT true);
CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint REFERENCES users(id), total numeric(10,2), status text, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE order_items (id bigserial PRIMARY KEY, order_id bigint REFERENCES orders(id), sku text, qty int, price numeric(10,2));
CREATE SCHEMA billing;
CREATE TABLE billing.invoices (id serial PRIMARY KEY, order_id bigint, amt numeric(10,2), note text);
CREATE SEQUENCE ticket_seq;
