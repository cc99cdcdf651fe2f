//! The words of an `exec:` command, split as a POSIX shell splits them (blanks, single and
//! double quotes, backslashes) with nothing expanded and nothing run. What only a shell
//! would do (pipes, redirections, variables, `~`, comments) is refused instead of passed on
//! as a word, with `exec:sh -c '…'` as the way to get a shell.

/// The words of `text`, or why it cannot be split.
pub(super) fn split(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    // Quotes make a word even when nothing is inside them: `''` is one empty word.
    let mut in_word = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(unclosed("single quote '")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('$' | '`' | '"' | '\\')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(unclosed("double quote \"")),
                        },
                        Some(c @ ('$' | '`')) => return Err(shell_only(c)),
                        Some(c) => word.push(c),
                        None => return Err(unclosed("double quote \"")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => {
                    in_word = true;
                    word.push(c);
                }
                None => {
                    return Err(
                        "a backslash at the end escapes nothing (write '\\\\' for a backslash)"
                            .to_string(),
                    );
                }
            },
            '|' | '&' | ';' | '<' | '>' | '(' | ')' | '$' | '`' => return Err(shell_only(c)),
            '#' | '~' if !in_word => return Err(shell_only(c)),
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        return Err("empty command (expected exec:COMMAND ARGS...)".to_string());
    }
    Ok(words)
}

fn unclosed(quote: &str) -> String {
    format!("unclosed {quote} (quote as in a POSIX shell: 'it'\\''s' or \"say \\\"hi\\\"\")")
}

fn shell_only(c: char) -> String {
    let meaning = match c {
        '|' => "a pipe",
        '&' => "a background job or &&",
        ';' => "a list of commands",
        '<' | '>' => "a redirection",
        '(' | ')' => "a subshell",
        '$' => "a variable or substitution",
        '`' => "a command substitution",
        '#' => "a comment",
        _ => "the home directory",
    };
    format!(
        "'{c}' means {meaning} in a shell, and exec: runs no shell: quote it ('{c}') to pass it \
         as it is, or write exec:sh -c '...' to run a shell"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_as_a_shell_splits_them() {
        let cases: &[(&str, &[&str])] = &[
            ("pg_isready -h db", &["pg_isready", "-h", "db"]),
            ("  a \t b\n c  ", &["a", "b", "c"]),
            ("sh -c 'exit 1'", &["sh", "-c", "exit 1"]),
            ("echo 'it'\\''s'", &["echo", "it's"]),
            (
                r#"echo "say \"hi\"" "a\b" "\$x""#,
                &["echo", r#"say "hi""#, r"a\b", "$x"],
            ),
            ("echo '' \"\"", &["echo", "", ""]),
            (r"echo a\ b \| c\\", &["echo", "a b", "|", r"c\"]),
            ("echo a\\\nb", &["echo", "ab"]),
            (
                "echo '$HOME' '|' 'a;b' \"#\" a#b x~y",
                &["echo", "$HOME", "|", "a;b", "#", "a#b", "x~y"],
            ),
            (
                "curl -f http://api:8080/health?deep=1",
                &["curl", "-f", "http://api:8080/health?deep=1"],
            ),
            ("test -e /data/*.pem", &["test", "-e", "/data/*.pem"]),
            ("check --ids 1,2,3", &["check", "--ids", "1,2,3"]),
        ];
        for (text, expected) in cases {
            let words = split(text).unwrap_or_else(|why| panic!("{text:?}: {why}"));
            assert_eq!(words, *expected, "{text:?}");
        }
    }

    #[test]
    fn what_a_shell_would_do_is_refused() {
        let cases = [
            ("", "empty command"),
            ("   ", "empty command"),
            ("echo 'open", "unclosed single quote"),
            ("echo \"open", "unclosed double quote"),
            ("echo \"a\\", "unclosed double quote"),
            ("echo a\\", "a backslash at the end"),
            ("pg_isready | grep ok", "'|' means a pipe"),
            ("a && b", "'&' means a background job"),
            ("a; b", "';' means a list"),
            ("cat < /x", "'<' means a redirection"),
            ("echo >/x", "'>' means a redirection"),
            ("echo $HOME", "'$' means a variable"),
            ("echo \"$HOME\"", "'$' means a variable"),
            ("echo `id`", "'`' means a command substitution"),
            ("echo (x)", "'(' means a subshell"),
            ("check # why", "'#' means a comment"),
            ("cat ~/x", "'~' means the home directory"),
        ];
        for (text, expected) in cases {
            let message = split(text).expect_err(text);
            assert!(message.contains(expected), "{text:?}: {message}");
        }
        assert!(split("a | b").unwrap_err().contains("exec:sh -c '...'"));
    }
}
