// Connects with the PostgreSQL JDBC driver (pgjdbc: its own protocol and SCRAM code,
// unlike libpq) with the driver's default settings, and reports.
//
// usage: java -cp /usr/share/java/postgresql.jar JdbcProbe.java
// Where and as whom from the libpq variables the harness sets (PGHOST, PGPORT, PGUSER,
// PGPASSWORD, PGDATABASE), since pgjdbc reads none of them itself. Nothing else is set:
// pgjdbc's default sslmode (prefer) takes TLS whenever the server offers it.
// On success prints "connected as <user> ssl=<true|false> answer=<n>"; on failure
// "refused sqlstate=<SQLSTATE> message=<server message>" and exits 1.

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;

public class JdbcProbe {
  public static void main(String[] args) throws Exception {
    String url = "jdbc:postgresql://" + env("PGHOST") + ":" + env("PGPORT") + "/" + env("PGDATABASE");
    Properties props = new Properties();
    props.setProperty("user", env("PGUSER"));
    props.setProperty("password", System.getenv().getOrDefault("PGPASSWORD", ""));
    props.setProperty("connectTimeout", "20");
    Connection conn;
    try {
      conn = DriverManager.getConnection(url, props);
    } catch (SQLException e) {
      System.out.println("refused sqlstate=" + e.getSQLState() + " message=" + e.getMessage());
      System.exit(1);
      return;
    }
    try (conn; Statement st = conn.createStatement()) {
      // A query with a parameter-free result proves the session works past login.
      ResultSet rs = st.executeQuery(
          "SELECT current_user, (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), 6 * 7");
      rs.next();
      System.out.println("connected as " + rs.getString(1) + " ssl=" + rs.getBoolean(2) + " answer=" + rs.getInt(3));
    }
  }

  private static String env(String name) {
    String value = System.getenv(name);
    if (value == null) throw new IllegalStateException(name + " is not set");
    return value;
  }
}
