import Glibc

/// Reads `\n`-terminated lines from a file descriptor (a trailing `\r` is dropped). A line longer than
/// `maxLine` is skipped up to its newline and reported as `.tooLong`, so one huge message cannot exhaust
/// memory or desynchronise the stream.
public final class LineReader {
    public enum Line: Equatable {
        case line([UInt8])
        case tooLong
    }

    let fd: Int32
    let maxLine: Int
    let chunkSize: Int
    private var buffer: [UInt8] = []
    private var start = 0
    private var eof = false
    private var skipping = false

    /// `chunkSize`: bytes asked of each read (small ones let tests and the fuzzer split lines anywhere).
    public init(fd: Int32, maxLine: Int = 32 << 20, chunkSize: Int = 1 << 16) {
        self.fd = fd
        self.maxLine = maxLine
        self.chunkSize = max(1, chunkSize)
    }

    /// The next line, or nil at end of input (a last line without a newline is still returned).
    public func next() -> Line? {
        while true {
            if let nl = buffer[start...].firstIndex(of: 10) {
                // A whole line that arrived in one read is held to the same limit as one that did not.
                let tooLong = skipping || nl - start > maxLine
                var line = tooLong ? [] : Array(buffer[start..<nl])
                start = nl + 1
                compact()
                if tooLong {
                    skipping = false
                    return .tooLong
                }
                if line.last == 13 { line.removeLast() }
                return .line(line)
            }
            if buffer.count - start > maxLine {
                // Drop what we have of this line and keep dropping until its newline.
                buffer.removeAll(keepingCapacity: true)
                start = 0
                skipping = true
            }
            if eof {
                if skipping {
                    // The rest of that line is not a line of its own (the fuzzer found it returned as one).
                    skipping = false
                    buffer.removeAll()
                    start = 0
                    return .tooLong
                }
                guard start < buffer.count else { return nil }
                var line = Array(buffer[start...])
                buffer.removeAll()
                start = 0
                if line.last == 13 { line.removeLast() }
                return .line(line)
            }
            fill()
        }
    }

    private func compact() {
        if start > 1 << 16 && start * 2 > buffer.count {
            buffer.removeFirst(start)
            start = 0
        }
    }

    private func fill() {
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                eof = true
                return
            }
            buffer.append(contentsOf: chunk[0..<n])
            return
        }
    }
}
