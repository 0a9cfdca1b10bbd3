// callback_origin() in PL/pgSQL, with the same result for every URL. As an SQL function whose body reads
// FROM a subquery it cannot be inlined, and each call paid the executor's set-up for that body, about
// 80 µs: on every lease (which adds an entry to orders_ready_origin_idx) and for each row a page read
// partner by partner compares. PL/pgSQL keeps its plan between calls, about 9 µs.
//
// orders_ready_origin_idx keeps its entries: they are this function's results, and the results do not
// change, so nothing is rebuilt and nothing blocks writes to orders. Replacing a function takes a lock
// on the function only.
// (\\? is knex's escape for a literal question mark.)

// 007's function, as 007 writes it (a test checks the two texts are the same): down() puts it back.
const SQL_VERSION = `
  CREATE OR REPLACE FUNCTION callback_origin(url text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
      SELECT CASE
        WHEN m IS NULL OR m[2] = '' THEN NULL
        WHEN m[3] IS NULL OR m[3] = '' THEN lower(m[1]) || '://' || lower(m[2])
        WHEN length(m[3]) > 5 THEN NULL
        WHEN (lower(m[1]) = 'http' AND m[3]::int = 80) OR (lower(m[1]) = 'https' AND m[3]::int = 443)
          THEN lower(m[1]) || '://' || lower(m[2])
        ELSE lower(m[1]) || '://' || lower(m[2]) || ':' || m[3]::int
      END
      FROM (SELECT regexp_match(url, '^\\s*(https\\?)://(\\?:[^/\\?#\\\\]*@)\\?(\\[[^]/\\?#\\\\]*\\]|[^/\\?#:\\\\@]*)(\\?::([0-9]*))\\?(\\?:[/\\?#\\\\]|\\s*$)', 'i') AS m) parsed
    $$`;

exports.up = async function up(knex) {
  await knex.raw(`
    CREATE OR REPLACE FUNCTION callback_origin(url text) RETURNS text
      LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
      AS $$
      DECLARE
        m text[] := regexp_match(url, '^\\s*(https\\?)://(\\?:[^/\\?#\\\\]*@)\\?(\\[[^]/\\?#\\\\]*\\]|[^/\\?#:\\\\@]*)(\\?::([0-9]*))\\?(\\?:[/\\?#\\\\]|\\s*$)', 'i');
      BEGIN
        RETURN CASE
          WHEN m IS NULL OR m[2] = '' THEN NULL
          WHEN m[3] IS NULL OR m[3] = '' THEN lower(m[1]) || '://' || lower(m[2])
          WHEN length(m[3]) > 5 THEN NULL
          WHEN (lower(m[1]) = 'http' AND m[3]::int = 80) OR (lower(m[1]) = 'https' AND m[3]::int = 443)
            THEN lower(m[1]) || '://' || lower(m[2])
          ELSE lower(m[1]) || '://' || lower(m[2]) || ':' || m[3]::int
        END;
      END
      $$`);
};

exports.down = async function down(knex) {
  await knex.raw(SQL_VERSION);
};

exports.SQL_VERSION = SQL_VERSION;
