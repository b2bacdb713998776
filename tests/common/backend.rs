//! A real HTTP backend for probe tests: a TCP listener on loopback whose
//! behaviour can be switched at run time, recording what it was sent.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answer with this status (301 adds a Location header).
    Status(u16),
    /// Read the request, never answer.
    Hang,
    /// 200 with headers, then a body that never ends.
    EndlessBody,
    /// Close at once with a TCP reset.
    Reset,
    /// `status` with a body of `pad` octets of `x`, then `text`.
    Body {
        status: u16,
        pad: usize,
        text: &'static str,
    },
    /// 200 with headers and `Content-Length`, then no body until stopped.
    StalledBody,
}

pub struct Backend {
    pub port: u16,
    mode: Arc<Mutex<Mode>>,
    pub hosts: Arc<Mutex<Vec<String>>>,
    pub paths: Arc<Mutex<Vec<String>>>,
    pub hits: Arc<Mutex<Vec<Instant>>>,
    pub count: Arc<AtomicUsize>,
    /// Each request's `X-Trafficmgr-Node` header (a fleet node's name) and when.
    pub nodes: Arc<Mutex<Vec<(Instant, String)>>>,
    /// Each request's head (request line and headers) as sent.
    pub heads: Arc<Mutex<Vec<String>>>,
    /// `X-Load` header value sent with every answer (none if `None`).
    pub load: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Backend {
    pub fn start(mode: Mode) -> Backend {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        l.set_nonblocking(true).unwrap();
        let mode = Arc::new(Mutex::new(mode));
        let hosts = Arc::new(Mutex::new(Vec::new()));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let hits = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let nodes = Arc::new(Mutex::new(Vec::new()));
        let nd = nodes.clone();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let hd = heads.clone();
        let load = Arc::new(Mutex::new(None));
        let ld = load.clone();
        let (m, h, p, t, c, s) = (
            mode.clone(),
            hosts.clone(),
            paths.clone(),
            hits.clone(),
            count.clone(),
            stop.clone(),
        );
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((stream, _)) => {
                        let (m, h, p, t, c, s) = (
                            m.clone(),
                            h.clone(),
                            p.clone(),
                            t.clone(),
                            c.clone(),
                            s.clone(),
                        );
                        let nd = nd.clone();
                        let hd = hd.clone();
                        let ld = ld.lock().unwrap().clone();
                        std::thread::spawn(move || serve(stream, m, h, p, t, c, s, nd, hd, ld));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Backend {
            port,
            mode,
            hosts,
            paths,
            hits,
            count,
            nodes,
            heads,
            load,
            stop,
            thread: Some(thread),
        }
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Reports this load (`X-Load: <v>`) in every answer from now on.
    pub fn set_load(&self, v: Option<&str>) {
        *self.load.lock().unwrap() = v.map(str::to_string);
    }

    pub fn requests(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn serve(
    mut s: TcpStream,
    mode: Arc<Mutex<Mode>>,
    hosts: Arc<Mutex<Vec<String>>>,
    paths: Arc<Mutex<Vec<String>>>,
    hits: Arc<Mutex<Vec<Instant>>>,
    count: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    nodes: Arc<Mutex<Vec<(Instant, String)>>>,
    heads: Arc<Mutex<Vec<String>>>,
    load: Option<String>,
) {
    let mode = *mode.lock().unwrap();
    if mode == Mode::Reset {
        // SO_LINGER 0: close sends RST.
        use std::os::fd::AsRawFd;
        let lg = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt on our own socket with a valid struct.
        unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                &lg as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::linger>() as u32,
            );
        }
        count.fetch_add(1, Ordering::SeqCst);
        hits.lock().unwrap().push(Instant::now());
        return;
    }
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut req = Vec::new();
    let mut buf = [0u8; 2048];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&req).to_string();
    heads.lock().unwrap().push(text.clone());
    if let Some(path) = text.split_whitespace().nth(1) {
        paths.lock().unwrap().push(path.to_string());
    }
    if let Some(h) = text.lines().find_map(|l| {
        l.strip_prefix("host: ")
            .or_else(|| l.strip_prefix("Host: "))
    }) {
        hosts.lock().unwrap().push(h.trim().to_string());
    }
    if let Some(n) = text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("x-trafficmgr-node")
            .then(|| v.trim().to_string())
    }) {
        nodes.lock().unwrap().push((Instant::now(), n));
    }
    count.fetch_add(1, Ordering::SeqCst);
    hits.lock().unwrap().push(Instant::now());
    match mode {
        Mode::Status(code) => {
            let loc = if (300..400).contains(&code) {
                "Location: /elsewhere\r\n"
            } else {
                ""
            };
            let load = load.map(|v| format!("X-Load: {v}\r\n")).unwrap_or_default();
            let _ = write!(
                s,
                "HTTP/1.1 {code} X\r\n{loc}{load}Content-Length: 2\r\nConnection: close\r\n\r\nok"
            );
        }
        Mode::Hang => {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Mode::EndlessBody => {
            let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
            let chunk = [b'x'; 4096];
            while !stop.load(Ordering::SeqCst) {
                if s.write_all(&chunk).is_err() {
                    return;
                }
            }
        }
        Mode::Body { status, pad, text } => {
            let mut body = vec![b'x'; pad];
            body.extend_from_slice(text.as_bytes());
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(&body);
        }
        Mode::StalledBody => {
            let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Mode::Reset => {}
    }
}
