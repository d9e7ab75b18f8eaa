import Testing

/// Every suite that starts real voxsyncd processes lives in here, and runs one test at a time.
/// Each test starts a supervisor with four workers (and some start PostgreSQL or Redis too);
/// run side by side on two cores they starve each other and every timing-sensitive test in the
/// package. The unit suites still run in parallel with these.
@Suite(.serialized) enum ServiceTests {}
