/**
 * Fixture text shared by the `fedns join` tests (edit.test.ts, join.test.ts).
 */

/**
 * The marked CoreDNS server block `fedns join` writes for federation "fed" of example.com
 * served at 192.0.2.53:1053, without a final line ending.
 */
export const FED_COREFILE_BLOCK = `# fedns:begin fed
example.com:53 {
    errors
    cache 30
    forward . 192.0.2.53:1053
}
# fedns:end fed`;

/** The block `fedns join` adds beside it when the configuration serves the clusterset zone (mcs.enabled). */
export const MCS_COREFILE_BLOCK = `# fedns:begin fed mcs
clusterset.local:53 {
    errors
    cache 30
    forward . 192.0.2.53:1053
}
# fedns:end fed mcs`;
