#if WARDEN_POSTGRES
import CLibPQ
import Glibc
import WardenCore
import WardenSystem

/// libpq, loaded with dlopen the first time a postgres:// store is opened. Linking it would load libpq and the
/// ~25 libraries it pulls in (Kerberos, LDAP, GnuTLS…) into every warden process, including `sandbox exec`,
/// whose start-up is on the measured path; SQLite users never need them.
struct LibPQ: @unchecked Sendable {
    typealias Conn = OpaquePointer
    typealias Res = OpaquePointer

    let connectdb: @convention(c) (UnsafePointer<CChar>?) -> Conn?
    let status: @convention(c) (Conn?) -> ConnStatusType
    let errorMessage: @convention(c) (Conn?) -> UnsafeMutablePointer<CChar>?
    let finish: @convention(c) (Conn?) -> Void
    let exec: @convention(c) (Conn?, UnsafePointer<CChar>?) -> Res?
    let execParams: @convention(c) (Conn?, UnsafePointer<CChar>?, Int32, UnsafePointer<Oid>?,
                                    UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?, Int32) -> Res?
    let resultStatus: @convention(c) (Res?) -> ExecStatusType
    let resultErrorField: @convention(c) (Res?, Int32) -> UnsafeMutablePointer<CChar>?
    let resultErrorMessage: @convention(c) (Res?) -> UnsafeMutablePointer<CChar>?
    let clear: @convention(c) (Res?) -> Void
    let cmdTuples: @convention(c) (Res?) -> UnsafeMutablePointer<CChar>?
    let ntuples: @convention(c) (Res?) -> Int32
    let nfields: @convention(c) (Res?) -> Int32
    let fname: @convention(c) (Res?, Int32) -> UnsafeMutablePointer<CChar>?
    let ftype: @convention(c) (Res?, Int32) -> Oid
    let getisnull: @convention(c) (Res?, Int32, Int32) -> Int32
    let getvalue: @convention(c) (Res?, Int32, Int32) -> UnsafeMutablePointer<CChar>?
    let socket: @convention(c) (Conn?) -> Int32
    let consumeInput: @convention(c) (Conn?) -> Int32
    let notifies: @convention(c) (Conn?) -> UnsafeMutablePointer<PGnotify>?
    let freemem: @convention(c) (UnsafeMutableRawPointer?) -> Void

    nonisolated(unsafe) private static var loaded: LibPQ?
    nonisolated(unsafe) private static var lock = pthread_mutex_t()
    private static let lockInit: Void = { pthread_mutex_init(&lock, nil) }()

    static func get() throws -> LibPQ {
        _ = lockInit
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        if let l = loaded { return l }
        if let why = SelfExecutable.cannotLoad("libpq") { throw SQLError(code: -1, sqlstate: "08001", message: why) }
        var handle: UnsafeMutableRawPointer?
        for name in ["libpq.so.5", "libpq.so"] {
            handle = dlopen(name, RTLD_NOW | RTLD_LOCAL)
            if handle != nil { break }
        }
        guard let h = handle else {
            throw SQLError(code: -1, sqlstate: "08001", message: "cannot load libpq (\(String(cString: dlerror()))); install libpq5")
        }
        func sym<T>(_ name: String, _: T.Type) throws -> T {
            guard let p = dlsym(h, name) else { throw SQLError(code: -1, sqlstate: "08001", message: "libpq lacks \(name)") }
            return unsafeBitCast(p, to: T.self)
        }
        let l = LibPQ(
            connectdb: try sym("PQconnectdb", (@convention(c) (UnsafePointer<CChar>?) -> Conn?).self),
            status: try sym("PQstatus", (@convention(c) (Conn?) -> ConnStatusType).self),
            errorMessage: try sym("PQerrorMessage", (@convention(c) (Conn?) -> UnsafeMutablePointer<CChar>?).self),
            finish: try sym("PQfinish", (@convention(c) (Conn?) -> Void).self),
            exec: try sym("PQexec", (@convention(c) (Conn?, UnsafePointer<CChar>?) -> Res?).self),
            execParams: try sym("PQexecParams", (@convention(c) (Conn?, UnsafePointer<CChar>?, Int32, UnsafePointer<Oid>?,
                                                                 UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?, Int32) -> Res?).self),
            resultStatus: try sym("PQresultStatus", (@convention(c) (Res?) -> ExecStatusType).self),
            resultErrorField: try sym("PQresultErrorField", (@convention(c) (Res?, Int32) -> UnsafeMutablePointer<CChar>?).self),
            resultErrorMessage: try sym("PQresultErrorMessage", (@convention(c) (Res?) -> UnsafeMutablePointer<CChar>?).self),
            clear: try sym("PQclear", (@convention(c) (Res?) -> Void).self),
            cmdTuples: try sym("PQcmdTuples", (@convention(c) (Res?) -> UnsafeMutablePointer<CChar>?).self),
            ntuples: try sym("PQntuples", (@convention(c) (Res?) -> Int32).self),
            nfields: try sym("PQnfields", (@convention(c) (Res?) -> Int32).self),
            fname: try sym("PQfname", (@convention(c) (Res?, Int32) -> UnsafeMutablePointer<CChar>?).self),
            ftype: try sym("PQftype", (@convention(c) (Res?, Int32) -> Oid).self),
            getisnull: try sym("PQgetisnull", (@convention(c) (Res?, Int32, Int32) -> Int32).self),
            getvalue: try sym("PQgetvalue", (@convention(c) (Res?, Int32, Int32) -> UnsafeMutablePointer<CChar>?).self),
            socket: try sym("PQsocket", (@convention(c) (Conn?) -> Int32).self),
            consumeInput: try sym("PQconsumeInput", (@convention(c) (Conn?) -> Int32).self),
            notifies: try sym("PQnotifies", (@convention(c) (Conn?) -> UnsafeMutablePointer<PGnotify>?).self),
            freemem: try sym("PQfreemem", (@convention(c) (UnsafeMutableRawPointer?) -> Void).self))
        loaded = l
        return l
    }
}
#endif
