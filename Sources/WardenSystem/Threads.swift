import CWardenLinux
import Glibc
import WardenCore

/// A dedicated, never-exiting thread that runs closures one at a time.
///
/// The sandbox launcher clones from here: PR_SET_PDEATHSIG fires when the *thread* that created a child
/// exits, and pool threads come and go, so long-lived sandboxes must be created by a thread that never ends.
public final class SerialThread: @unchecked Sendable {
    private var jobs: [() -> Void] = []   // guarded by `lock`
    private var cond = pthread_cond_t()
    private var lock = pthread_mutex_t()
    private var thread = pthread_t()

    public init(name: String) {
        pthread_mutex_init(&lock, nil)
        pthread_cond_init(&cond, nil)
        let me = Unmanaged.passRetained(self)
        pthread_mutex_lock(&lock)   // `thread` is set before the thread can take a job
        pthread_create(&thread, nil, { arg in
            Unmanaged<SerialThread>.fromOpaque(arg!).takeUnretainedValue().loop()
            return nil
        }, me.toOpaque())
        pthread_detach(thread)
        pthread_mutex_unlock(&lock)
    }

    private func loop() {
        while true {
            pthread_mutex_lock(&lock)
            while jobs.isEmpty { pthread_cond_wait(&cond, &lock) }
            let batch = jobs
            jobs.removeAll()
            pthread_mutex_unlock(&lock)
            for job in batch { job() }
        }
    }

    /// Runs `body` on the thread and waits for its result (at once when called from the thread itself).
    public func run<T>(_ body: @escaping () -> T) -> T {
        if pthread_equal(pthread_self(), thread) != 0 { return body() }
        let done = Signal()
        nonisolated(unsafe) var result: T?
        pthread_mutex_lock(&lock)
        jobs.append {
            result = body()
            done.signal()
        }
        pthread_cond_signal(&cond)
        pthread_mutex_unlock(&lock)
        done.wait()
        return result!
    }
}

/// A counting semaphore over pthread primitives (Dispatch-free, usable from any thread).
public final class Signal: @unchecked Sendable {
    private var lock = pthread_mutex_t()
    private var cond = pthread_cond_t()
    private var count: Int

    public init(_ value: Int = 0) {
        count = value
        pthread_mutex_init(&lock, nil)
        initMonotonicCondition(&cond)
    }

    deinit {
        pthread_mutex_destroy(&lock)
        pthread_cond_destroy(&cond)
    }

    public func signal() {
        pthread_mutex_lock(&lock)
        count += 1
        pthread_cond_signal(&cond)
        pthread_mutex_unlock(&lock)
    }

    public func wait() {
        pthread_mutex_lock(&lock)
        while count == 0 { pthread_cond_wait(&cond, &lock) }
        count -= 1
        pthread_mutex_unlock(&lock)
    }

    /// Waits up to `ms` milliseconds; true when signalled.
    public func wait(timeoutMs ms: Int64) -> Bool {
        var ts = monotonicDeadline(afterNs: UInt64(max(0, ms)) * 1_000_000)
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        while count == 0 {
            if pthread_cond_timedwait(&cond, &lock, &ts) == ETIMEDOUT { return count > 0 ? { count -= 1; return true }() : false }
        }
        count -= 1
        return true
    }
}

/// Starts a detached thread running `body`.
public func startThread(_ body: @escaping @Sendable () -> Void) {
    final class Box { let f: @Sendable () -> Void; init(_ f: @escaping @Sendable () -> Void) { self.f = f } }
    let box = Unmanaged.passRetained(Box(body))
    var tid = pthread_t()
    pthread_create(&tid, nil, { arg in
        let b = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
        b.f()
        return nil
    }, box.toOpaque())
    pthread_detach(tid)
}

/// Gives the memory that is free in every malloc arena back to the kernel, so that resident memory measures
/// what is live rather than what threads happened to touch and free.
public func releaseFreedMemory() { _ = warden_malloc_trim() }

/// Initializes `cond` to time its waits on CLOCK_MONOTONIC, so that a step of the wall clock can neither
/// stretch nor cut a timeout. Pair it with `monotonicDeadline`.
public func initMonotonicCondition(_ cond: UnsafeMutablePointer<pthread_cond_t>) {
    var attr = pthread_condattr_t()
    pthread_condattr_init(&attr)
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
    pthread_cond_init(cond, &attr)
    pthread_condattr_destroy(&attr)
}

/// CLOCK_MONOTONIC now plus `ns`: the deadline pthread_cond_timedwait takes for a monotonic condition.
public func monotonicDeadline(afterNs ns: UInt64) -> timespec {
    let at = Time.monotonicNs() + ns
    return timespec(tv_sec: Int(at / 1_000_000_000), tv_nsec: Int(at % 1_000_000_000))
}
