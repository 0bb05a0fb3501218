//! Moving from the Django service: `authgate import-users` with an export made by real
//! Django (tests/fixtures/make_django_users.py), then logins with Django's hashes.
//!
//! Long file: real Django-made hashes and dumps (fixtures generated in the test) for each source format and failure mode.

use crate::helpers::*;
use serde_json::json;
use std::path::Path;
use std::process::Command;

const JSON: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/django_users.json"
);
const CSV: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/django_users.csv"
);

/// The fixture's users who can log in: (pk, email as stored, hasher).
const USABLE: [(u64, &str, &str); 6] = [
    (7, "ann.pbkdf2@example.com", "pbkdf2_sha256"),
    (8, "bob.sha1@example.com", "pbkdf2_sha1"),
    (9, "cy.argon2@example.com", "argon2"),
    (10, "di.bcrypt@example.com", "bcrypt_sha256"),
    (11, "ed.bcrypt-plain@example.com", "bcrypt"),
    (4242, "fay.scrypt@example.com", "scrypt"),
];

/// The password make_django_users.py gave a user of `hasher`.
fn password(hasher: &str) -> String {
    format!("django {hasher} password")
}

/// `authgate -c <gw's config> import-users ARGS`: (exit code, stdout, stderr).
fn import(gw: &TestGateway, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_authgate"))
        .arg("-c")
        .arg(gw.conf())
        .arg("import-users")
        .args(args)
        .env_remove("AUTHGATE_JWT_SECRET")
        .env_remove("AUTHGATE_REDIS_URL")
        .env_remove("AUTHGATE_REDIS_KEY_PREFIX")
        .output()
        .expect("run authgate import-users");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Import `args` and insist it ran to the end.
fn import_ok(gw: &TestGateway, args: &[&str]) -> String {
    let (code, out, err) = import(gw, args);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    out
}

/// The stored fields of `user:{id}` under gw's prefix.
fn user_hash(gw: &TestGateway, id: u64) -> String {
    shared_redis().cli(&["HGETALL", &format!("{}user:{{{id}}}", gw.prefix)])
}

fn stored_password(gw: &TestGateway, id: u64) -> String {
    shared_redis().cli(&[
        "HGET",
        &format!("{}user:{{{id}}}", gw.prefix),
        "password_hash",
    ])
}

/// Every key under gw's prefix with its value (hashes as HGETALL), sorted: the
/// whole state an import can touch.
fn snapshot(gw: &TestGateway) -> Vec<(String, String)> {
    let r = shared_redis();
    let mut keys: Vec<String> = r
        .keys(&format!("{}*", gw.prefix))
        .lines()
        .map(str::to_owned)
        .filter(|k| !k.contains(":thr:"))
        .collect();
    keys.sort();
    keys.into_iter()
        .map(|k| {
            let v = match r.cli(&["TYPE", &k]).as_str() {
                // Field order is not stable once Redis converts a hash to a hash table.
                "hash" => {
                    let flat = r.cli(&["HGETALL", &k]);
                    let lines: Vec<&str> = flat.lines().collect();
                    let mut pairs: Vec<String> = lines.chunks(2).map(|p| p.join("=")).collect();
                    pairs.sort();
                    pairs.join("\n")
                }
                "string" => r.cli(&["GET", &k]),
                other => other.to_owned(),
            };
            (k, v)
        })
        .collect()
}

#[tokio::test]
async fn django_users_log_in_with_their_passwords_and_keep_their_ids() {
    let up = Upstream::start("echo").await;
    let gw = TestGateway::builder().upstream(up.addr).start();

    let out = import_ok(&gw, &[JSON]);
    // Every record not imported, by position and pk, with its reason.
    for line in [
        "record 7 (pk 14): skipped, duplicate_email: the same email as record 8",
        "record 8 (pk 15): skipped, duplicate_email: the same email as record 7",
        "record 9 (pk 16): skipped, missing_email",
        "record 10 (pk 17): skipped, invalid_email",
        "record 12 (pk 19): skipped, unsupported_hash: unsupported password hasher \"md5\"",
        "record 6 (pk 13): imported; disabled: is_active is false",
        "record 11 (pk 18): imported; unusable Django password",
        "imported: 8 (disabled: 1, unusable password: 1)",
        "already present: 0",
        "skipped: 5",
        "    duplicate_email: 2",
        "user:next_id: 4242",
    ] {
        assert!(out.contains(line), "no {line:?} in:\n{out}");
    }

    for (pk, email, hasher) in USABLE {
        let imported = user_hash(&gw, pk);
        assert!(imported.contains(email), "{pk}: {imported}");
        assert!(
            stored_password(&gw, pk).starts_with(&format!("{hasher}$")),
            "the Django hash is stored as exported"
        );

        let (s, b) = gw.login(email, "not the password").await;
        assert_eq!(s, 401, "{hasher}: {b}");
        assert_error(&b, "invalid_credentials");
        assert!(stored_password(&gw, pk).starts_with(&format!("{hasher}$")));

        // Any spelling registration would take, as at registration.
        let spelled = email.to_uppercase();
        let (s, b) = gw.login(&spelled, &password(hasher)).await;
        assert_eq!(s, 200, "{hasher}: {b}");
        let access = b["access_token"].as_str().unwrap().to_owned();
        let upgraded = stored_password(&gw, pk);
        assert!(
            upgraded.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
            "{hasher}: re-hashed with the gateway's parameters: {upgraded}"
        );

        let me = gw.get_json("/me", &access).await;
        assert_eq!(me["id"], pk, "{me}");
        assert_eq!(me["email"], email);
        let echo = gw.get_json("/api/orders", &access).await;
        assert_eq!(header_values(&echo, "x-user-id"), vec![pk.to_string()]);

        // And again, now against argon2id; the wrong password still fails.
        let (s, b) = gw.login(email, &password(hasher)).await;
        assert_eq!(s, 200, "{hasher} after the upgrade: {b}");
        assert_eq!(stored_password(&gw, pk), upgraded, "upgraded once");
        let (s, _) = gw.login(email, &password("other")).await;
        assert_eq!(s, 401);
    }

    // The username and date_joined came along.
    let ann = user_hash(&gw, 7);
    assert!(ann.contains("ann") && ann.contains("1551675960"), "{ann}");

    // Inactive: imported as disabled. A wrong password gets the 401 anyone gets;
    // only the right one learns that the account is disabled (docs/roles-and-admin.md).
    let (s, b) = gw.login("gus.inactive@example.com", "wrong password").await;
    assert_eq!(s, 401, "{b}");
    assert_error(&b, "invalid_credentials");
    let (s, b) = gw
        .login("gus.inactive@example.com", &password("pbkdf2_sha256"))
        .await;
    assert_eq!(s, 403, "{b}");
    assert_error(&b, "account_disabled");
    assert!(user_hash(&gw, 13).contains("disabled"));
    // An unusable password never logs in, whatever is sent.
    let unusable = stored_password(&gw, 18);
    assert!(unusable.starts_with('!'), "{unusable}");
    for pw in ["", "!", unusable.as_str(), "django  password"] {
        let (s, _) = gw.login("kim.unusable@example.com", pw).await;
        assert_eq!(s, 401);
    }
    // Nothing of the skipped records was written.
    for pk in [14, 15, 16, 17, 19] {
        assert_eq!(user_hash(&gw, pk), "", "pk {pk}");
    }
    let (s, _) = gw
        .login("hal.dup@example.com", &password("pbkdf2_sha256"))
        .await;
    assert_eq!(s, 401);

    // The counter is above every imported id: a new account gets 4243 or more.
    let (s, b) = gw.register("new.after.import@example.com", PASSWORD).await;
    assert_eq!(s, 201, "{b}");
    assert!(b["id"].as_u64().unwrap() > 4242, "{b}");
    // An imported email is taken, in any spelling.
    let (s, b) = gw.register("Cy.Argon2@Example.com", PASSWORD).await;
    assert_eq!(s, 409, "{b}");

    // Importing again changes nothing (not even the upgraded hashes) and says why.
    let before = snapshot(&gw);
    let again = import_ok(&gw, &[JSON]);
    assert!(again.contains("imported: 0 "), "{again}");
    assert!(again.contains("already present: 8"), "{again}");
    assert!(
        again.contains("record 9 (pk 16): skipped, missing_email"),
        "{again}"
    );
    assert_eq!(snapshot(&gw), before);
    // The counter is never lowered.
    let counter = shared_redis().cli(&["GET", &format!("{}user:next_id", gw.prefix)]);
    assert!(counter.parse::<u64>().unwrap() > 4242, "{counter}");
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_a_csv_export_imports_the_same() {
    let gw = TestGateway::start();
    let out = import_ok(&gw, &["--dry-run", CSV]);
    assert_eq!(
        shared_redis().keys(&format!("{}*", gw.prefix)),
        "",
        "a dry run writes nothing"
    );
    for line in [
        "line 8 (pk 14): skipped, duplicate_email: the same email as line 9",
        "line 10 (pk 16): skipped, missing_email",
        "line 12 (pk 18): would be imported; unusable Django password",
        "(dry run: nothing written)",
        // No is_active column: the inactive user is an ordinary one here.
        "would import: 8 (disabled: 0, unusable password: 1)",
        "skipped: 5",
        "user:next_id: would be raised to at least 4242",
    ] {
        assert!(out.contains(line), "no {line:?} in:\n{out}");
    }

    // The real run reports what the dry run said.
    let real = import_ok(&gw, &[CSV]);
    let skips = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.contains("skipped, "))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(skips(&real), skips(&out));
    assert!(real.contains("imported: 8 "), "{real}");

    let (s, b) = gw
        .login("di.bcrypt@example.com", &password("bcrypt_sha256"))
        .await;
    assert_eq!(s, 200, "{b}");
    let me = gw
        .get_json("/me", b["access_token"].as_str().unwrap())
        .await;
    assert_eq!(
        me,
        json!({"id": 10, "username": "di", "email": "di.bcrypt@example.com"})
    );

    // A dry run after the import: everything is already there.
    let dry = import_ok(&gw, &["--dry-run", "--format", "csv", CSV]);
    assert!(dry.contains("already present: 8"), "{dry}");
}

/// Write `text` to a fresh file named `name`.
fn scratch(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique("authgate-import"));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[tokio::test]
async fn malformed_records_are_reported_and_skipped_and_conflicts_are_left_alone() {
    let gw = TestGateway::start();
    // Taken before the import: an id by another account, an email by another id.
    let registered = gw.new_user().await;
    let hash = "pbkdf2_sha256$1000$NaCl$y6UK+57OG2yJnZIbS3E5E599IliwIIbBdkxEFXXGYlM=";
    let id_taken = registered.id;
    let csv = format!(
        "id,email,username,password\n\
         501,ok.one@example.com,one,{hash}\n\
         502,short@example.com\n\
         abc,bad.id@example.com,x,{hash}\n\
         503,\"quoted,comma@example.com\",y,{hash}\n\
         {id_taken},other@example.com,z,{hash}\n\
         504,{email},w,{hash}\n\
         505,ok.two@example.com,\"two\nlines\",{hash}\n",
        email = registered.email.to_uppercase(),
    );
    let file = scratch("users.csv", &csv);
    // The registered id is an overlap: imported only when told to skip it.
    let out = import_ok(&gw, &["--allow-id-overlap", file.to_str().unwrap()]);
    for line in [
        "line 3: skipped, malformed: 2 fields where the header has 4",
        "line 4 (pk abc): skipped, malformed: pk \"abc\" is not a positive integer",
        "line 5 (pk 503): skipped, invalid_email",
        &format!("line 6 (pk {id_taken}): skipped, id_registered"),
        &format!("line 7 (pk 504): skipped, email_taken: the email belongs to user {id_taken}"),
        "imported: 2 ",
    ] {
        assert!(out.contains(line), "no {line:?} in:\n{out}");
    }
    // The accounts that were there are untouched; nothing of the skipped records is.
    let (s, _) = gw.login(&registered.email, PASSWORD).await;
    assert_eq!(s, 200);
    assert!(!user_hash(&gw, id_taken).contains("other@example.com"));
    assert_eq!(user_hash(&gw, 504), "");
    // The second line of a quoted field is still the record of line 8.
    let (s, b) = gw.login("ok.two@example.com", "correct horse").await;
    assert_eq!(s, 200, "{b}");

    // The JSON reader keeps going past objects it cannot use.
    let json_text = json!([
        {"model": "auth.user", "pk": 601, "fields": {"email": "j.one@example.com", "username": "j", "password": hash, "is_active": true}},
        {"model": "auth.group", "pk": 1, "fields": {"name": "staff", "permissions": []}},
        {"model": "auth.user", "pk": 602, "fields": {"email": 7, "password": hash}},
        {"model": "auth.user", "pk": 603, "fields": {"email": "j.three@example.com", "password": hash, "date_joined": "last week"}},
        "not an object",
        {"model": "auth.user", "pk": 604, "fields": {"email": "j.four@example.com", "password": hash}}
    ]);
    let file = scratch("users.json", &json_text.to_string());
    let out = import_ok(&gw, &[file.to_str().unwrap()]);
    for line in [
        "record 2 (pk 1): skipped, malformed: no password field",
        "record 3 (pk 602): skipped, malformed: `fields.email` is 7, not a string",
        "record 4 (pk 603): skipped, malformed: date_joined \"last week\" is not a date",
        "record 5: skipped, malformed: not a dumpdata object",
        "imported: 2 ",
    ] {
        assert!(out.contains(line), "no {line:?} in:\n{out}");
    }

    // A file that breaks off is refused before anything is written.
    let broken = scratch(
        "broken.json",
        r#"[{"model": "auth.user", "pk": 701, "fields": {"email": "k@example.com", "password": "!"}}, {"pk": "#,
    );
    let (code, out, err) = import(&gw, &[broken.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("broken.json") && err.contains("line 1"),
        "{err}"
    );
    assert_eq!(user_hash(&gw, 701), "");
    let (code, _, err) = import(
        &gw,
        &[Path::new("/nonexistent/users.json").to_str().unwrap()],
    );
    assert_eq!(code, 1);
    assert!(err.contains("cannot read /nonexistent/users.json"), "{err}");
}

/// Regression (#21): a Django export whose pks are ids of accounts registered
/// here used to hand those ids over ("skipped: id_taken", exit 0), and a
/// registrant who had taken the export's email at the export's id was counted
/// "already present", keeping the registrant's password at the Django user's
/// id. Now the import is refused before anything is written (exit 3), unless
/// `--allow-id-overlap`, which still never takes a registered account for an
/// imported one.
#[tokio::test]
async fn an_import_whose_ids_meet_registered_accounts_is_refused_and_writes_nothing() {
    let gw = TestGateway::start();
    let first = gw.new_user().await;
    let squatter = gw.new_user().await;
    // The registrant at the Django admin's id registered the admin's email first.
    let hash = "pbkdf2_sha256$1000$NaCl$y6UK+57OG2yJnZIbS3E5E599IliwIIbBdkxEFXXGYlM=";
    let csv = format!(
        "id,email,username,password\n\
         {a},admin@corp.example,admin,{hash}\n\
         {b},{b_email},squat,{hash}\n\
         {c},fresh@corp.example,fresh,{hash}\n",
        a = first.id,
        b = squatter.id,
        b_email = squatter.email,
        c = squatter.id + 1000,
    );
    let file = scratch("overlap.csv", &csv);
    let before = snapshot(&gw);
    for args in [vec![], vec!["--dry-run"]] {
        let mut args: Vec<&str> = args;
        args.push(file.to_str().unwrap());
        let (code, out, err) = import(&gw, &args);
        assert_eq!(code, 3, "{args:?}\nstdout:\n{out}\nstderr:\n{err}");
        assert!(err.contains("nothing was written"), "{err}");
        for pk in [first.id, squatter.id] {
            let line = format!("(pk {pk}): skipped, id_registered");
            assert!(out.contains(&line), "no {line:?} in:\n{out}");
        }
        assert_eq!(snapshot(&gw), before, "{args:?} wrote to Redis");
    }

    let out = import_ok(&gw, &["--allow-id-overlap", file.to_str().unwrap()]);
    assert!(out.contains("imported: 1 "), "{out}");
    // The registrants keep their ids and passwords; the Django admin got nothing of theirs.
    for u in [&first, &squatter] {
        let (s, b) = gw.login(&u.email, PASSWORD).await;
        assert_eq!(s, 200, "{b}");
        let me = gw
            .get_json("/me", b["access_token"].as_str().unwrap())
            .await;
        assert_eq!(me["id"], u.id, "{me}");
    }
    assert_eq!(gw.login(&squatter.email, "correct horse").await.0, 401);
    assert_eq!(gw.login("admin@corp.example", "correct horse").await.0, 401);
    assert!(!user_hash(&gw, first.id).contains("admin@corp.example"));
    let (s, b) = gw.login("fresh@corp.example", "correct horse").await;
    assert_eq!(s, 200, "{b}");
    assert!(user_hash(&gw, squatter.id + 1000).contains("imported"));
    assert!(user_hash(&gw, first.id).contains("registered"));
}

/// `registration.enabled: false` closes `/register` (403, nothing written) so
/// the import can come first; `registration.first_id` keeps registered ids
/// away from the imported ones.
#[tokio::test]
async fn registration_can_be_closed_and_kept_above_a_floor() {
    let closed = TestGateway::builder()
        .yaml("registration:\n  enabled: false\n")
        .start();
    let before = snapshot(&closed);
    let (s, b) = closed.register("early@corp.example", PASSWORD).await;
    assert_eq!(s, 403, "{b}");
    assert_error(&b, "registration_closed");
    assert_eq!(snapshot(&closed), before, "a closed registration wrote");

    let floor = 1_000_000u64;
    let gw = TestGateway::builder()
        .yaml(&format!("registration:\n  first_id: {floor}\n"))
        .start();
    let (s, b) = gw.register("one@corp.example", PASSWORD).await;
    assert_eq!(s, 201, "{b}");
    let id = b["id"].as_u64().unwrap();
    assert!(id >= floor, "registered at {id}, below the floor");
    let (s, b) = gw.register("two@corp.example", PASSWORD).await;
    assert_eq!((s, b["id"].as_u64()), (201, Some(id + 1)));
    // The export's ids are below the floor: no overlap, no refusal.
    let hash = "pbkdf2_sha256$1000$NaCl$y6UK+57OG2yJnZIbS3E5E599IliwIIbBdkxEFXXGYlM=";
    let file = scratch(
        "low.csv",
        &format!("id,email,username,password\n7,seven@corp.example,s,{hash}\n"),
    );
    let out = import_ok(&gw, &[file.to_str().unwrap()]);
    assert!(out.contains("imported: 1 "), "{out}");
}

/// `pbkdf2_sha256$<iterations>$<salt>$<digest of password, first len bytes>`.
fn pbkdf2_sha256(password: &str, salt: &str, iterations: u32, len: usize) -> String {
    use base64::Engine;
    let mut out = vec![0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(iterations).unwrap(),
        salt.as_bytes(),
        password.as_bytes(),
        &mut out,
    );
    out.truncate(len);
    let digest = base64::engine::general_purpose::STANDARD.encode(out);
    format!("pbkdf2_sha256${iterations}${salt}${digest}")
}

/// Issue #23: Django hashes past the cost ceilings (pbkdf2 iterations, bcrypt
/// cost, argon2 passes/lanes, scrypt p) or with a short digest are refused at
/// import, naming why; a truncated pbkdf2 digest already in Redis (stored by an
/// older version) never matches at login, though it is the password's own.
#[tokio::test]
async fn django_hashes_past_the_ceilings_or_truncated_are_refused() {
    let gw = TestGateway::start();
    let good = pbkdf2_sha256("pw-of-601", "NaCl601", 1000, 32);
    let cases: [(u64, String, &str); 7] = [
        (602, pbkdf2_sha256("pw", "NaCl", 1000, 1), "a 1-byte digest where pbkdf2_sha256 makes 32"),
        (603, pbkdf2_sha256("pw", "NaCl", 1000, 31), "a 31-byte digest"),
        (
            604,
            "pbkdf2_sha256$50000000$NaCl$y6UK+57OG2yJnZIbS3E5E599IliwIIbBdkxEFXXGYlM=".into(),
            "more than 5000000 iterations",
        ),
        (
            605,
            "pbkdf2_sha1$1000$NaCl$y6UK+57OG2yJnZIbS3E5E599IliwIIbBdkxEFXXGYlM=".into(),
            "a 32-byte digest where pbkdf2_sha1 makes 20",
        ),
        (
            606,
            "bcrypt_sha256$$2b$20$D6fLhrCNndir0LVy1OBMpO2HHUs7YjSw6WdyiE1egK74Q2oPEeN8O".into(),
            "cost 4 to 15",
        ),
        (
            607,
            "argon2$argon2id$v=19$m=102400,t=200,p=8$Qzl3VW5FamYxdndPdjdIMkkyNFdWNA$OhIUepu2HvBPVfVVUI2g7UnFY/sF3avKhOUJFk2KTkM".into(),
            "more than 16 passes",
        ),
        (
            608,
            "scrypt$16384$sDjsTbqVH1rWLuTlAIJlcp$8$500$cyDxXBWL5CngFfdAVgoNdCqLZ0sJ4bS4ndqWgI0Wh8TxF8ViA1kKnNXbHOKB19rQrbj9kWbTDRcTPRdY58DbJQ==".into(),
            "p above 16",
        ),
    ];
    let mut csv = format!("id,email,username,password\n601,ceil.601@example.com,u601,{good}\n");
    for (pk, hash, _) in &cases {
        // Quoted: an argon2 hash holds commas.
        csv.push_str(&format!("{pk},ceil.{pk}@example.com,u{pk},\"{hash}\"\n"));
    }
    let out = import_ok(&gw, &[scratch("ceilings.csv", &csv).to_str().unwrap()]);
    for (pk, _, why) in &cases {
        let line = out
            .lines()
            .find(|l| l.contains(&format!("(pk {pk}):")))
            .unwrap_or_else(|| panic!("no line for pk {pk} in:\n{out}"));
        assert!(
            line.contains("skipped, unsupported_hash") && line.contains(why),
            "pk {pk}: {line}"
        );
    }
    assert!(out.contains("imported: 1"), "{out}");
    let (s, b) = gw.login("ceil.601@example.com", "pw-of-601").await;
    assert_eq!(s, 200, "{b}");

    // A truncated digest of the right password, as an older version stored it.
    let (pk, email, password) = (609, "ceil.609@example.com", "pw-of-609");
    let csv = format!(
        "id,email,username,password\n{pk},{email},u{pk},{}\n",
        pbkdf2_sha256(password, "NaCl609", 1000, 32)
    );
    import_ok(&gw, &[scratch("one.csv", &csv).to_str().unwrap()]);
    let key = format!("{}user:{{{pk}}}", gw.prefix);
    let truncated = pbkdf2_sha256(password, "NaCl609", 1000, 1);
    shared_redis().cli(&["HSET", &key, "password_hash", &truncated]);
    let (s, b) = gw.login(email, password).await;
    assert_eq!(s, 401, "a truncated digest matched: {b}");
    assert_error(&b, "invalid_credentials");
    assert_eq!(stored_password(&gw, pk), truncated, "left as it is");
}
