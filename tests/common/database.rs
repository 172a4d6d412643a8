//! Fresh databases for tests on the server at `DATABASE_URL`, each dropped when the test is done
//! with it, and counting rows in them.

use hancha::node::Node;
use hancha::store::Store;
use sqlx::Connection;

/// What the name of every database a test creates starts with.
pub const TEST_DATABASE_PREFIX: &str = "hancha_test";

/// A fresh, empty database on the server at `DATABASE_URL`, created for one test and dropped
/// when this guard is dropped, so that a developer's own server does not fill with
/// `hancha_test_*` databases. Whoever uses the database (a node, a [`Store`]) must be dropped
/// with it or before it: the drop closes every connection still open to it.
pub struct TestDatabase {
    /// Connection URL of the server's maintenance database, from `DATABASE_URL`: the database
    /// is created and dropped from there.
    admin_url: String,
    /// The database's name: [`TEST_DATABASE_PREFIX`] and a random suffix.
    name: String,
    /// Connection URL of the database itself.
    url: String,
}

impl TestDatabase {
    /// Connection URL of the database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name on the server.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // `drop` cannot await and may run on a runtime's thread, where blocking on that runtime
        // panics: the drop gets a plain thread with a runtime of its own.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        match std::thread::spawn(move || drop_database(&admin_url, &name)).join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("test database {} was not dropped: {error:#}", self.name),
            Err(_) => eprintln!("test database {} was not dropped: the drop panicked", self.name),
        }
    }
}

/// A fresh, empty database on the server at `DATABASE_URL`, dropped with the returned guard.
pub async fn fresh_database() -> TestDatabase {
    let admin_url = admin_url();
    let fresh = hancha::devdb::create_database(&admin_url, TEST_DATABASE_PREFIX)
        .await
        .expect("create database");
    TestDatabase {
        admin_url,
        name: fresh.name,
        url: fresh.url,
    }
}

/// Whether the server at `DATABASE_URL` holds a database called `name`.
pub async fn database_exists(name: &str) -> bool {
    let mut connection = sqlx::PgConnection::connect(&admin_url())
        .await
        .expect("connect to DATABASE_URL");
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(&mut connection)
        .await
        .expect("look the database up")
}

/// The server every test database lives on.
fn admin_url() -> String {
    std::env::var("DATABASE_URL").expect("DATABASE_URL must be set (./scripts/test sets it)")
}

/// Drops `name` on the server at `admin_url`, closing the connections still open to it (a node's
/// pool, a worker's listener).
fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(hancha::devdb::drop_database(admin_url, name))
}

/// The database behind `store`, through a pool of our own: the node's pool is the store's, and
/// a test that counts or changes rows behind the node's back does it over its own connections.
pub async fn database(store: &Store) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(store.connect_options())
        .await
        .expect("connect to the node's database")
}

/// Count of rows in a node's database matching `sql` (a `SELECT count(*) ...`).
pub async fn count(node: &Node, sql: &str) -> i64 {
    count_in(node.store(), sql).await
}

/// Count of rows in a database we hold a [`Store`] for (e.g. a [`NodeProcess`]'s).
pub async fn count_in(store: &Store, sql: &str) -> i64 {
    let database = database(store).await;
    let count = sqlx::query_scalar(sql).fetch_one(&database).await.expect(sql);
    database.close().await;
    count
}
