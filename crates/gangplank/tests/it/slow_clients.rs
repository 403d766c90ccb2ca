//! Slow and idle clients are disconnected, and the connection cap holds the next connection
//! back until one closes: raw TCP against a server with one-second timeouts.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{ADMIN, Server};

fn address(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// Reads (and discards) until the server closes the connection; false if it is still open
/// after `limit`.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let start = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buffer = [0u8; 4096];
    while start.elapsed() < limit {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

/// Reads one HTTP response (headers and a `Content-Length` body) within `limit`.
fn read_response(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let start = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    while start.elapsed() < limit {
        let text = String::from_utf8_lossy(&data).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return Some(text);
            }
        }
        match stream.read(&mut buffer) {
            Ok(0) => return None,
            Ok(n) => data.extend_from_slice(&buffer[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return None,
        }
    }
    None
}

/// Writes `prefix`, then one more byte of `trickle` every 200 ms (pacing, not waiting for
/// anything) until the server closes the connection or `trickle` runs out.
fn trickle(
    stream: &TcpStream,
    prefix: &str,
    trickle: &'static [u8],
) -> std::thread::JoinHandle<()> {
    let mut writer = stream.try_clone().unwrap();
    writer.write_all(prefix.as_bytes()).unwrap();
    std::thread::spawn(move || {
        for byte in trickle {
            if writer.write_all(&[*byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })
}

const SLOW: &[u8] = &[b'a'; 200];

#[test]
fn silent_slow_and_idle_connections_are_closed() {
    let server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_HTTP_HEADER_TIMEOUT", "1s"),
        ("GANGPLANK_HTTP_BODY_TIMEOUT", "1s"),
        ("GANGPLANK_HTTP_IDLE_TIMEOUT", "1s"),
    ]);
    let addr = address(&server);
    // Each case gets 15 s; a closed connection is seen within about one second.
    let limit = Duration::from_secs(15);

    // (a) Sends nothing.
    let mut silent = TcpStream::connect(&addr).unwrap();
    let start = Instant::now();
    assert!(
        closed_within(&mut silent, limit),
        "a silent connection stayed open"
    );
    println!("silent connection closed after {:?}", start.elapsed());

    // (b) Headers one byte at a time, never finished.
    let mut slow_headers = TcpStream::connect(&addr).unwrap();
    let start = Instant::now();
    let writer = trickle(
        &slow_headers,
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ",
        SLOW,
    );
    assert!(
        closed_within(&mut slow_headers, limit),
        "a connection sending headers slowly stayed open"
    );
    println!("slow headers closed after {:?}", start.elapsed());
    writer.join().unwrap();

    // (c) A body one byte at a time.
    let mut slow_body = TcpStream::connect(&addr).unwrap();
    let start = Instant::now();
    let head = format!(
        "POST /orgs/default/apps HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    );
    let writer = trickle(&slow_body, &head, SLOW);
    assert!(
        closed_within(&mut slow_body, limit),
        "a connection sending its body slowly stayed open"
    );
    println!("slow body closed after {:?}", start.elapsed());
    writer.join().unwrap();

    // (d) Idle after keep-alive requests: served twice on one connection, then closed.
    let mut idle = TcpStream::connect(&addr).unwrap();
    for _ in 0..2 {
        idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let response = read_response(&mut idle, limit).expect("a keep-alive response");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    let start = Instant::now();
    assert!(
        closed_within(&mut idle, limit),
        "an idle keep-alive connection stayed open"
    );
    println!("idle connection closed after {:?}", start.elapsed());

    // Nothing the slow clients sent was created.
    let (status, _) = server.call("GET", "/orgs/default/apps/aaaa", Some(ADMIN), None);
    assert_eq!(status, 404);
}

#[test]
fn connections_over_the_cap_wait_until_one_closes() {
    let server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_HTTP_MAX_CONNECTIONS", "2"),
        ("GANGPLANK_HTTP_HEADER_TIMEOUT", "60s"),
        // The test harness's own pooled connection is closed after two seconds idle.
        ("GANGPLANK_HTTP_IDLE_TIMEOUT", "2s"),
    ]);
    let addr = address(&server);
    let limit = Duration::from_secs(15);
    // Two connections are served, then hold their slots with an unfinished next request.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(&addr).unwrap();
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let response = read_response(&mut stream, limit).expect("served under the cap");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        stream.write_all(b"GET /hea").unwrap();
        held.push(stream);
    }
    // The third waits in the backlog: its request is not answered while both are open.
    let mut third = TcpStream::connect(&addr).unwrap();
    third
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_response(&mut third, Duration::from_millis(1500)),
        None,
        "a connection over the cap was served"
    );
    // Closing one lets it in.
    drop(held.remove(0));
    let response = read_response(&mut third, limit).expect("served once a slot freed");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[test]
fn shutdown_is_not_held_by_a_client_that_does_not_read() {
    let mut server = Server::start_with(&[
        ("GANGPLANK_BOOTSTRAP_TOKEN", ADMIN),
        ("GANGPLANK_HTTP_HEADER_TIMEOUT", "1s"),
        ("GANGPLANK_HTTP_BODY_TIMEOUT", "1s"),
        ("GANGPLANK_HTTP_IDLE_TIMEOUT", "1s"),
    ]);
    let addr = address(&server);
    // A thousand pipelined requests for the API document: a few kilobytes sent at once, far
    // more answer than the socket buffers hold. The client reads the start of the first
    // answer and then nothing: the server is writing when the shutdown begins and can never
    // finish, so only the idle deadline ends the connection.
    let mut stalled = TcpStream::connect(&addr).unwrap();
    let requests = "GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1000);
    stalled.write_all(requests.as_bytes()).unwrap();
    let mut start_of_answer = [0u8; 12];
    stalled.read_exact(&mut start_of_answer).unwrap();
    assert_eq!(&start_of_answer, b"HTTP/1.1 200");
    // The server has answered requests until the socket buffers filled and now waits to
    // write: the bytes queued for the client stop growing. (A shutdown begun before that
    // point closes the connection after the answer in flight, queued bytes or not.)
    let mut queued = vec![0u8; 16 << 20];
    let mut last = 0;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now_queued = stalled.peek(&mut queued).unwrap();
        if now_queued > 0 && now_queued == last {
            break;
        }
        assert!(Instant::now() < deadline, "the server never stalled");
        last = now_queued;
        std::thread::sleep(Duration::from_millis(200));
    }
    let start = Instant::now();
    let status = server
        .terminate_within(Duration::from_secs(15))
        .expect("the server still runs 15 s after SIGTERM: a client that does not read held it");
    println!("exited after {:?} with {status}", start.elapsed());
    assert!(status.success(), "{status}");
    drop(stalled);
}
