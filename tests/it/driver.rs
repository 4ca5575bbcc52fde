//! The one driver for tests that run the real `wxcube` binary as a child
//! process (after ripgrep's `TestCommand`): [`TestCommand`] builds the
//! command (the binary, isolated from the machine's environment, its
//! directory, variables and arguments) and spawns it as a [`Proc`], whose
//! stdout and stderr are read on threads. A `Proc` can be waited on with a
//! deadline (for a line matching a predicate, or for its exit), sent signals,
//! or driven to its end line by line under a watchdog ([`Proc::watch`]); a
//! finished run is a [`Run`]. A process still running when its `Proc` is
//! dropped is killed.
//!
//! Waits come in two kinds: `async` ones that poll (for tests whose
//! simulator runs on the same runtime), and [`Proc::watch`], which blocks
//! the calling thread and reacts to each stderr line as it arrives.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_wxcube");

/// SIGTERM/SIGINT must end the process within this (the README's promise for `wxcube daemon`).
pub const STOP_LIMIT: Duration = Duration::from_secs(10);

/// No single run of the binary may take longer (the watchdog of
/// [`Proc::watch`] kills it; [`TestCommand::run`] gives up waiting).
pub const RUN_LIMIT: Duration = Duration::from_secs(120);

/// How often the `async` waits look again.
const POLL: Duration = Duration::from_millis(20);

pub const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `program`, kept independent of the machine: no stray config or
/// variables, no colours.
fn isolated(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars() {
        if key.starts_with("WXCUBE_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// The real binary, isolated from the machine's environment.
pub fn wxcube() -> Command {
    isolated(BIN)
}

/// A `wxcube` command line to be spawned.
pub struct TestCommand {
    cmd: Command,
}

impl TestCommand {
    /// The binary, isolated (see [`wxcube`]).
    pub fn new() -> TestCommand {
        TestCommand { cmd: wxcube() }
    }

    /// The binary started by `sh` after `prefix` (e.g. `ulimit -f 512`),
    /// with the same isolation.
    pub fn through_shell(prefix: &str) -> TestCommand {
        let mut cmd = isolated("sh");
        cmd.arg("-c")
            .arg(format!("{prefix} && exec \"$0\" \"$@\""))
            .arg(BIN);
        TestCommand { cmd }
    }

    pub fn dir(mut self, dir: &Path) -> TestCommand {
        self.cmd.current_dir(dir);
        self
    }

    /// Environment variables (later wins).
    pub fn vars(mut self, vars: &[(String, String)]) -> TestCommand {
        self.cmd
            .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> TestCommand {
        self.cmd.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> TestCommand {
        self.cmd.env_remove(key);
        self
    }

    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> TestCommand {
        self.cmd.args(args);
        self
    }

    /// Runs the process to its end, waiting (`async`) up to [`RUN_LIMIT`].
    pub async fn run(self) -> Run {
        self.spawn().finish(RUN_LIMIT).await
    }

    /// Starts the process: stdin empty, stdout and stderr read on threads.
    pub fn spawn(mut self) -> Proc {
        let started = Instant::now();
        let mut child = self
            .cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start wxcube");
        let captured = Arc::new(Captured::default());
        let stderr = child.stderr.take().expect("piped stderr");
        let stdout = child.stdout.take().expect("piped stdout");
        let readers = vec![
            std::thread::spawn({
                let captured = captured.clone();
                move || {
                    let mut err = BufReader::new(stderr);
                    let mut line = Vec::new();
                    loop {
                        line.clear();
                        match err.read_until(b'\n', &mut line) {
                            Ok(0) | Err(_) => break,
                            Ok(_) => captured.push_line(&String::from_utf8_lossy(&line)),
                        }
                    }
                    captured.update(|o| o.stderr_closed = true);
                }
            }),
            std::thread::spawn({
                let captured = captured.clone();
                move || {
                    let mut bytes = Vec::new();
                    let _ = BufReader::new(stdout).read_to_end(&mut bytes);
                    captured.update(|o| o.stdout.extend(bytes));
                }
            }),
        ];
        Proc {
            child,
            captured,
            readers,
            started,
        }
    }
}

/// What a process wrote so far, shared with the reader threads.
#[derive(Default)]
struct Captured {
    output: Mutex<Output>,
    changed: Condvar,
}

#[derive(Default)]
struct Output {
    /// stderr line by line, without the line ending.
    lines: Vec<String>,
    /// stderr as written.
    stderr: String,
    stdout: Vec<u8>,
    stderr_closed: bool,
}

impl Captured {
    fn update(&self, f: impl FnOnce(&mut Output)) {
        f(&mut self.output.lock().unwrap());
        self.changed.notify_all();
    }

    fn push_line(&self, raw: &str) {
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        let line = line.strip_suffix('\r').unwrap_or(line);
        self.update(|o| {
            o.lines.push(line.to_string());
            o.stderr.push_str(raw);
        });
    }

    fn read<T>(&self, f: impl FnOnce(&Output) -> T) -> T {
        f(&self.output.lock().unwrap())
    }

    /// Blocks until stderr line `index` exists (returned), stderr is closed
    /// (`Ok(None)`) or `due` passes (`Err(())`); `None` for `due` waits
    /// without end.
    fn line(&self, index: usize, due: Option<Instant>) -> Result<Option<String>, ()> {
        let mut output = self.output.lock().unwrap();
        loop {
            if let Some(line) = output.lines.get(index) {
                return Ok(Some(line.clone()));
            }
            if output.stderr_closed {
                return Ok(None);
            }
            output = match due {
                None => self.changed.wait(output).unwrap(),
                Some(due) => {
                    let left = due.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(());
                    }
                    self.changed.wait_timeout(output, left).unwrap().0
                }
            };
        }
    }
}

/// One finished run of the binary.
pub struct Run {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Lets a [`Proc::watch`] line callback kill the child, now or a little
/// later (only the first request counts).
pub struct Killer {
    kill_at: Option<Instant>,
    requested: bool,
}

impl Killer {
    pub fn kill_in(&mut self, delay: Duration) {
        if !self.requested {
            self.requested = true;
            let at = Instant::now() + delay;
            self.kill_at = Some(self.kill_at.map_or(at, |k| k.min(at)));
        }
    }

    pub fn kill_now(&mut self) {
        self.kill_in(Duration::ZERO);
    }
}

/// A running wxcube process.
pub struct Proc {
    child: Child,
    captured: Arc<Captured>,
    readers: Vec<JoinHandle<()>>,
    started: Instant,
}

impl Proc {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// stderr so far, line by line.
    pub fn lines(&self) -> Vec<String> {
        self.captured.read(|o| o.lines.clone())
    }

    /// stderr so far, as written.
    pub fn stderr(&self) -> String {
        self.captured.read(|o| o.stderr.clone())
    }

    /// stdout (complete once the process has exited).
    pub fn stdout(&self) -> Vec<u8> {
        self.captured.read(|o| o.stdout.clone())
    }

    pub fn count_lines(&self, needle: &str) -> usize {
        self.captured
            .read(|o| o.lines.iter().filter(|l| l.contains(needle)).count())
    }

    /// Sends `signal`; the process must not have been reaped yet.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the pid of our own child, which has not been
        // reaped yet (only `&mut self` reaps it), so the pid cannot have
        // been reused.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill({}, {signal}) failed", self.pid());
    }

    /// The exit status if the process has exited; then every line is read.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.try_wait().unwrap();
        if status.is_some() {
            // The pipes are at EOF once the process is gone: take every line.
            self.join_readers();
        }
        status
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
    }

    /// Index of the first stderr line at or after `from` that satisfies
    /// `pred`, waiting up to `timeout`. Panics (with the log) on timeout or if
    /// the process exits without writing it.
    pub async fn wait_line(
        &mut self,
        from: usize,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let exited = self.exited();
            let found = self
                .captured
                .read(|o| o.lines.iter().skip(from).position(|l| pred(l)));
            if let Some(i) = found {
                return from + i;
            }
            if let Some(status) = exited {
                panic!(
                    "wxcube exited ({status}) without logging {what}; stderr:\n{}",
                    self.stderr()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "no {what} within {timeout:?}; stderr so far:\n{}",
                    self.stderr()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits for a line containing `needle` (see `wait_line`).
    pub async fn wait_for(&mut self, from: usize, needle: &str, timeout: Duration) -> usize {
        self.wait_line(from, &format!("{needle:?}"), timeout, |l| {
            l.contains(needle)
        })
        .await
    }

    /// Waits for the process to exit; panics after `timeout`. Returns the
    /// status and how long the wait took.
    pub async fn wait_exit(&mut self, timeout: Duration) -> (ExitStatus, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                return (status, start.elapsed());
            }
            if start.elapsed() > timeout {
                panic!(
                    "wxcube (pid {}) still running {timeout:?} later; stderr:\n{}",
                    self.pid(),
                    self.stderr()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Sends `signal` and asserts a clean exit (code 0) within
    /// [`STOP_LIMIT`]; returns how long the stop took.
    pub async fn stop_with(&mut self, signal: i32) -> Duration {
        self.signal(signal);
        let (status, took) = self.wait_exit(STOP_LIMIT).await;
        assert_eq!(
            status.code(),
            Some(0),
            "exit after signal {signal}: {status}; stderr:\n{}",
            self.stderr()
        );
        took
    }

    /// Waits (up to `limit`) for the process to end by itself.
    pub async fn finish(mut self, limit: Duration) -> Run {
        let (status, _) = self.wait_exit(limit).await;
        self.run(status)
    }

    fn run(&self, status: ExitStatus) -> Run {
        Run {
            code: status.code(),
            signal: status.signal(),
            stdout: String::from_utf8_lossy(&self.stdout()).into_owned(),
            stderr: self.stderr(),
            elapsed: self.started.elapsed(),
        }
    }

    /// Drives the process to its end on this thread, feeding every stderr
    /// line to `on_line` as it arrives. The process is SIGKILLed at `limit`
    /// after its start (and the test then fails), at `kill_after` after its
    /// start, or when `on_line` asks for it. A kill always precedes the
    /// reaping, so it can never hit a recycled pid.
    pub fn watch(
        mut self,
        limit: Duration,
        kill_after: Option<Duration>,
        mut on_line: impl FnMut(&str, &mut Killer),
    ) -> Run {
        let limit_at = self.started + limit;
        let mut killer = Killer {
            kill_at: kill_after.map(|delay| self.started + delay),
            requested: false,
        };
        let mut timed_out = false;
        let mut next = 0;
        loop {
            let due = if timed_out {
                None
            } else {
                Some(killer.kill_at.map_or(limit_at, |k| k.min(limit_at)))
            };
            match self.captured.line(next, due) {
                Ok(Some(line)) => {
                    next += 1;
                    on_line(line.trim_end(), &mut killer);
                }
                Ok(None) => break,
                Err(()) => {
                    // SAFETY: kill(2) on our own child, not yet reaped.
                    unsafe { libc::kill(self.pid(), libc::SIGKILL) };
                    if killer
                        .kill_at
                        .is_some_and(|k| k <= Instant::now() && k < limit_at)
                    {
                        // A planned kill: read on to the end.
                        killer.kill_at = None;
                    } else {
                        timed_out = true;
                    }
                }
            }
        }
        let status = self.child.wait().expect("wait for wxcube");
        self.join_readers();
        assert!(
            !timed_out,
            "wxcube ran longer than {limit:?} and was killed:\n{}",
            self.stderr()
        );
        self.run(status)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A "stored" log line, in text or JSON format.
pub fn is_stored_line(line: &str) -> bool {
    line.contains(" stored ") || line.contains("\"message\":\"stored\"")
}
