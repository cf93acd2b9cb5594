//! Where lamb's work runs in parallel: a small parallel map over a slice on scoped threads
//! (results keep the input order, so anything computed from them is the same whatever the
//! thread count), and the async runtime AWS calls and the daemon run on.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The async runtime for AWS calls and the daemon: two worker threads are plenty for
/// waiting on the network, and leave the cores to builds.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()
}

/// Runs `f` over `items` on up to `jobs` threads.
pub fn map<T: Sync, R: Send>(items: &[T], jobs: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    if jobs <= 1 || items.len() <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..jobs.min(items.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    *slots[i].lock().expect("result slot poisoned") = Some(r);
                }
            });
        }
    });
    slots.into_iter().map(|m| m.into_inner().expect("result slot poisoned").expect("every item ran")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_order_for_any_thread_count() {
        let items: Vec<u32> = (0..100).collect();
        for jobs in [1, 2, 7, 200] {
            assert_eq!(super::map(&items, jobs, |x| x * 2), items.iter().map(|x| x * 2).collect::<Vec<_>>());
        }
    }
}
