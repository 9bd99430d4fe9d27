//! `profiledb::pin_threads`: rayon's pool gets one thread per core, each
//! allowed on its own core alone, as the system reports it. Its own test
//! binary (one test), so that nothing has built rayon's pool before.

#[cfg(target_os = "linux")]
#[test]
fn the_pool_has_one_thread_pinned_to_each_core() {
    use std::collections::BTreeSet;

    /// The cores a thread (or the process, from `/proc/self/status`) may
    /// run on, from its `Cpus_allowed_list` line ("0-1", "0,2,5-7").
    fn allowed(status: &str) -> BTreeSet<usize> {
        let list = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .expect("a status file has Cpus_allowed_list")
            .trim();
        let mut cores = BTreeSet::new();
        for part in list.split(',') {
            match part.split_once('-') {
                Some((a, b)) => {
                    let a: usize = a.parse().expect("a core number");
                    let b: usize = b.parse().expect("a core number");
                    cores.extend(a..=b);
                }
                None => {
                    cores.insert(part.parse().expect("a core number"));
                }
            }
        }
        cores
    }

    let process =
        allowed(&std::fs::read_to_string("/proc/self/status").expect("/proc/self/status"));
    let pinned = profiledb::pin_threads().expect("nothing has built rayon's pool yet");
    let threads = std::thread::available_parallelism()
        .expect("the threads this process may use")
        .get();
    if process.len() < 2 || process.len() != threads {
        assert!(
            !pinned,
            "one core or a quota leaves the pool as rayon builds it"
        );
        return;
    }
    assert!(pinned);
    // Every pool thread has run its start handler once it takes a job.
    rayon::broadcast(|_| ());

    let mut pool = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let task = task.expect("a task of this process").path();
        let name = std::fs::read_to_string(task.join("comm")).expect("a task's name");
        if name.trim().starts_with("profiledb-pool-") {
            pool.push(allowed(
                &std::fs::read_to_string(task.join("status")).expect("a task's status"),
            ));
        }
    }
    assert_eq!(pool.len(), process.len(), "one pool thread per core");
    let mut cores = BTreeSet::new();
    for one in &pool {
        assert_eq!(
            one.len(),
            1,
            "each pool thread is allowed one core: {one:?}"
        );
        cores.extend(one);
    }
    assert_eq!(
        cores, process,
        "the pool's threads cover every core, one each"
    );

    // The pool is built now: a second call says so rather than rebuilding it.
    let again = profiledb::pin_threads().expect_err("the pool is built");
    assert!(again.to_string().contains("already"), "{again}");
}
