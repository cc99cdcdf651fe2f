//! libpq's password file (`passfile`, PGPASSFILE or ~/.pgpass): found, checked for
//! permissions as libpq checks them, and searched for a host's password.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use super::uri::Host;
use crate::redact::Secret;

/// libpq's password file: `host:port:database:user:password` lines, `*` matching anything,
/// `\` escaping `:` and `\`.
pub(super) struct PasswordFile {
    entries: Vec<[String; 5]>,
}

impl PasswordFile {
    /// The file named by `passfile` or PGPASSFILE (which must be usable), else ~/.pgpass if
    /// it exists.
    pub(super) fn find(
        explicit: Option<String>,
        home: Option<String>,
    ) -> Result<Option<PasswordFile>> {
        let path = match (explicit, home) {
            (Some(path), _) => PathBuf::from(path),
            (None, Some(home)) => {
                let path = Path::new(&home).join(".pgpass");
                if !path.exists() {
                    return Ok(None);
                }
                path
            }
            (None, None) => return Ok(None),
        };
        Self::read(&path).map(Some)
    }

    fn read(path: &Path) -> Result<PasswordFile> {
        use std::os::unix::fs::PermissionsExt as _;
        let shown = path.display();
        let metadata = std::fs::metadata(path)
            .with_context(|| format!("cannot read password file {shown}"))?;
        if !metadata.is_file() {
            bail!("password file {shown} is not a plain file");
        }
        if metadata.permissions().mode() & 0o077 != 0 {
            bail!(
                "password file {shown} has group or world access, so libpq would ignore it: make it u=rw (chmod 0600; in Kubernetes, defaultMode: 0600)"
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read password file {shown}"))?;
        Ok(Self::parse(&text))
    }

    fn parse(text: &str) -> PasswordFile {
        let entries = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let mut fields = Vec::with_capacity(5);
                let mut field = String::new();
                let mut chars = line.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => field.extend(chars.next()),
                        ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
                        c => field.push(c),
                    }
                }
                fields.push(field);
                <[String; 5]>::try_from(fields).ok()
            })
            .collect();
        PasswordFile { entries }
    }

    pub(super) fn lookup(&self, host: &Host, dbname: &str, user: &str) -> Option<Secret> {
        let port = host.port.to_string();
        let wanted = [host.name.as_str(), &port, dbname, user];
        self.entries
            .iter()
            .find(|entry| {
                entry[..4]
                    .iter()
                    .zip(wanted)
                    .all(|(field, wanted)| field == "*" || field == wanted)
            })
            .map(|entry| Secret::new(entry[4].clone()))
            .filter(|password| !password.expose().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::super::settings::Postgres;
    use super::*;

    #[test]
    fn password_sources_in_libpq_order() {
        let dir = tempfile::tempdir().unwrap();
        let passfile = dir.path().join("pgpass");
        std::fs::write(
            &passfile,
            "# comment\nother:*:*:*:wrong\ndb:5432:app:u:from\\:file\n*:*:*:*:fallback\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).unwrap();
        let passfile_text = passfile.display().to_string();
        let env = |name: &str| match name {
            "PGPASSWORD" => Some("from-env".to_string()),
            "PGPASSFILE" => Some(passfile_text.clone()),
            _ => None,
        };
        let password = |uri: &str, env: &dyn Fn(&str) -> Option<String>| {
            Postgres::parse_with_env(uri, env).unwrap().hosts[0]
                .password
                .as_ref()
                .map(|secret| secret.expose().to_string())
        };
        assert_eq!(
            password("postgres://u:in-uri@db/app?password=in-query", &env).as_deref(),
            Some("in-query")
        );
        assert_eq!(
            password("postgres://u:in-uri@db/app", &env).as_deref(),
            Some("in-uri")
        );
        assert_eq!(
            password("postgres://u@db/app", &env).as_deref(),
            Some("from-env")
        );
        let no_env_password = |name: &str| env(name).filter(|_| name != "PGPASSWORD");
        assert_eq!(
            password("postgres://u@db/app", &no_env_password).as_deref(),
            Some("from:file")
        );
        assert_eq!(
            password("postgres://u@db:6000/app", &no_env_password).as_deref(),
            Some("fallback")
        );
        assert_eq!(password("postgres://db/app#isready", &env), None);

        std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o644)).unwrap();
        let message = format!(
            "{:#}",
            Postgres::parse_with_env("postgres://u@db/app", &no_env_password).unwrap_err()
        );
        assert!(message.contains("group or world access"), "{message}");
    }

    #[test]
    fn password_file_lines() {
        let file = PasswordFile::parse("a\\:b:*:db:u:p\\\\w:x\nshort:line\n");
        assert_eq!(file.entries.len(), 1);
        assert_eq!(file.entries[0][0], "a:b");
        assert_eq!(file.entries[0][4], "p\\w:x");
    }
}
