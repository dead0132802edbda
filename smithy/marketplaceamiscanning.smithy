$version: "2.0"

// AWS Marketplace AMI Scanning: the companion service imagebuild serves beside the Image Build
// Service (same endpoint, same SigV4 signing name, its own target prefix). The botocore JSON under
// models/marketplaceamiscanning/2021-01-15/ is the wire contract; tests/model_drift.rs fails when
// this file and that model disagree on operations, members, required members, constraints or
// errors.

namespace com.amazonaws.marketplaceamiscanning

use aws.api#service
use aws.auth#sigv4
use aws.protocols#awsJson1_1

/// Self-service AMI scanning for AWS Marketplace sellers: the Add AMI workflow of the AWS
/// Marketplace Management Portal (select AMIs, give the access role, scanning port and OS user,
/// optionally a product ID, submit; follow the scans; read the issues; resubmit) as a JSON API on
/// the same endpoint as the Image Build Service. A companion of marketplaceimagebuild-2017-12-15,
/// served by imagebuild; AWS publishes no such API.
@service(sdkId: "Marketplace AMI Scanning", endpointPrefix: "imagebuild.marketplace")
@sigv4(name: "aws-marketplace")
@awsJson1_1
@title("AWS Marketplace AMI Scanning Service")
service AWSMPAmiScanning {
    version: "2021-01-15"
    operations: [DescribeScanFindings, DescribeScans, ListImages, ResubmitScan, StartScans]
}

/// Returns the per-control results and the findings of one scan. Findings covered by an exception
/// granted to the scan's product are left out unless IncludeExempted is true.
@readonly
@paginated(inputToken: "NextToken", outputToken: "NextToken", pageSize: "MaxResults", items: "Findings")
operation DescribeScanFindings {
    input: DescribeScanFindingsRequest
    output: DescribeScanFindingsResult
    errors: [
        InternalServerErrorException
        InvalidScanIdException
        InvalidFilterException
        InvalidMaxResultsException
        InvalidNextTokenException
        UnauthorizedOperationException
    ]
}

/// Lists the scans of the AWS account in use (one per attempt), in descending order of creation
/// time.
@readonly
@paginated(inputToken: "NextToken", outputToken: "NextToken", pageSize: "MaxResults", items: "Scans")
operation DescribeScans {
    input: DescribeScansRequest
    output: DescribeScansResult
    errors: [
        InternalServerErrorException
        InvalidScanIdException
        InvalidNextTokenException
        InvalidMaxResultsException
        InvalidFilterException
        UnauthorizedOperationException
    ]
}

/// Lists the AMIs the AWS account in use owns in the Region, the ones it can submit with
/// StartScans, in ascending order of image ID, each with its latest scan (the AMI picker of the Add
/// AMI workflow).
@readonly
@paginated(inputToken: "NextToken", outputToken: "NextToken", pageSize: "MaxResults", items: "Images")
operation ListImages {
    input: ListImagesRequest
    output: ListImagesResult
    errors: [
        InternalServerErrorException
        InvalidFilterException
        InvalidMaxResultsException
        InvalidNextTokenException
        UnauthorizedOperationException
    ]
}

/// Starts a new attempt for the AMI of a finished scan, optionally with a new access role, OS user
/// name, scanning port, product ID or SNS topic. Only the latest scan of an AMI can be resubmitted.
operation ResubmitScan {
    input: ResubmitScanRequest
    output: ResubmitScanResult
    errors: [
        InternalServerErrorException
        IdempotentParameterMismatchException
        InvalidScanIdException
        InvalidAccessRoleArnException
        InvalidOsUserNameException
        InvalidScanningPortException
        InvalidProductIdException
        InvalidSnsTopicArnException
        ScanInProgressException
        ScanLimitExceededException
        UnauthorizedOperationException
    ]
}

/// Shares 1 to 25 AMIs with AWS Marketplace and starts ingesting and scanning each of them. The
/// request is validated as a whole: if any image is not valid, no scan is started.
operation StartScans {
    input: StartScansRequest
    output: StartScansResult
    errors: [
        InternalServerErrorException
        IdempotentParameterMismatchException
        ImageLimitExceededException
        InvalidSourceImageIdException
        InvalidAccessRoleArnException
        InvalidOsUserNameException
        InvalidScanningPortException
        InvalidProductIdException
        InvalidSnsTopicArnException
        ScanInProgressException
        ScanLimitExceededException
        UnauthorizedOperationException
    ]
}

boolean Boolean

/// The result of one control of a scan.
structure Control {
    /// The control that was evaluated.
    ControlId: ControlId

    /// What the control checks.
    Title: String

    /// The result of the control for this scan.
    Result: ControlResult
}

enum ControlId {
    KNOWN_VULNERABILITY
    MALWARE
    UNSUPPORTED_OS
    SSH_PASSWORD_AUTHENTICATION
    ROOT_PASSWORD
    ROOT_REMOTE_LOGIN
    AUTHORIZED_KEYS
    HARDCODED_CREDENTIALS
    WINDOWS_GUEST_ACCOUNTS
    WINDOWS_LAUNCH_AGENT
}

list ControlList {
    member: Control
}

enum ControlResult {
    PASS
    FAIL
    NOT_EXECUTED
    EXEMPTION_PASS
}

timestamp DateTime

structure DescribeScanFindingsRequest {
    /// The scan whose findings to return.
    @required
    ScanId: String

    /// Also return findings covered by an exception granted to the scan's product (default false).
    IncludeExempted: Boolean

    /// Filters: severity (critical, high, medium, low, informational), control-id, result (fail,
    /// exemption-pass).
    Filters: FilterList

    /// The maximum number of findings to return (1-100, default 100).
    MaxResults: FindingsMaxResults

    /// The token for the next page of findings.
    NextToken: NextToken
}

structure DescribeScanFindingsResult {
    /// The scan.
    ScanId: String

    /// The status of the scan.
    Status: ScanStatus

    /// Every control evaluated for the scan, with its result. Empty before the scan phase.
    Controls: ControlList

    /// One page of findings.
    Findings: FindingList

    /// The token for the next page, if there is one.
    NextToken: NextToken
}

structure DescribeScansRequest {
    /// Only these scans (at most 50).
    ScanIds: StringList

    /// Filters: scan-id, image-id, product-id, status (ingesting, scanning, succeeded,
    /// issues-found, ingestion-failed, failed, internal-error) and latest-only (true or false).
    Filters: FilterList

    /// The maximum number of scans to return (1-256, default 100).
    MaxResults: MaxResults

    /// The token for the next page of scans.
    NextToken: NextToken
}

structure DescribeScansResult {
    /// One page of scans, newest first.
    Scans: ScanList

    /// The token for the next page, if there is one.
    NextToken: NextToken
}

double Double

/// A container for error code and an error message.
structure ErrorDetail {
    /// Error code providing specific detail on the error.
    Code: ScanErrorCode

    /// Error message providing specific detail on the error, with the action that fixes it.
    Message: String
}

/// Where a finding was found.
structure ErrorScope {
    /// What the value names.
    Name: ScopeName

    /// The AMI ID, file path or package name.
    Value: String
}

list ErrorScopeList {
    member: ErrorScope
}

/// A filter name and value pair that is used to return a more specific list of results.
structure Filter {
    /// The name of the filter. Filter names are case-sensitive.
    Name: String

    /// One or more filter values. Filter values are case-sensitive.
    Values: StringList
}

list FilterList {
    member: Filter
}

/// One issue found by a scan.
structure Finding {
    /// Stable identifier of the finding within the scan.
    FindingId: String

    /// The control that produced the finding.
    ControlId: ControlId

    /// FAIL, or EXEMPTION_PASS when an exception granted to the scan's product covers it.
    Result: ControlResult

    /// How severe the finding is.
    Severity: Severity

    /// What was found, in UPPER_SNAKE case.
    Code: FindingCode

    /// A one-line summary.
    Title: String

    /// What was found and why it matters.
    Description: String

    /// What to change in the AMI so the finding goes away.
    Remediation: String

    /// Where it was found: AMI_ID, FILE_PATH, PACKAGE_NAME.
    Scope: ErrorScopeList

    /// CVE details, for KNOWN_VULNERABILITY findings.
    Vulnerability: Vulnerability

    /// The exception that covers the finding, for EXEMPTION_PASS.
    ExemptionId: String
}

@pattern("^[A-Z_]+$")
string FindingCode

/// How many findings a scan has, by severity.
structure FindingCounts {
    /// Non-exempted CRITICAL findings.
    Critical: Integer

    /// Non-exempted HIGH findings.
    High: Integer

    /// Non-exempted MEDIUM findings.
    Medium: Integer

    /// Non-exempted LOW findings.
    Low: Integer

    /// Non-exempted INFORMATIONAL findings.
    Informational: Integer

    /// Findings covered by exceptions granted to the scan's product.
    Exempted: Integer
}

list FindingList {
    member: Finding
}

@range(min: 1, max: 100)
integer FindingsMaxResults

/// One AMI to scan and how to reach it.
structure ImageScanRequest {
    /// The AMI to scan. It must be in the scanning Region and owned by the caller.
    @required
    SourceImageId: String

    /// The IAM role AWS Marketplace assumes to access the AMI: arn:aws:iam::ACCOUNT:role/NAME in
    /// the caller's account, trusting assets.marketplace.amazonaws.com.
    @required
    AccessRoleArn: String

    /// For Linux AMIs, the OS user to log in as (required; for example ec2-user). Ignored for
    /// Windows.
    OsUserName: String

    /// The SSH port of a Linux AMI (default 22) or the RDP port of a Windows AMI (default 3389),
    /// 1-65535.
    ScanningPort: Integer

    /// The product the AMI belongs to; exceptions granted to it are applied to the results.
    ProductId: String
}

list ImageScanRequestList {
    member: ImageScanRequest
}

integer Integer

structure ListImagesRequest {
    /// Filters: image-id, platform (linux, windows) and scan-status (not-scanned, or the latest
    /// scan's status: ingesting, scanning, succeeded, issues-found, ingestion-failed, failed,
    /// internal-error).
    Filters: FilterList

    /// The maximum number of AMIs to return (1-100, default 100).
    MaxResults: FindingsMaxResults

    /// The token for the next page of AMIs.
    NextToken: NextToken
}

structure ListImagesResult {
    /// One page of AMIs, in ascending order of image ID.
    Images: SellerImageList

    /// The token for the next page, if there is one.
    NextToken: NextToken
}

@range(min: 1, max: 256)
integer MaxResults

@length(min: 1, max: 1024)
string NextToken

enum Platform {
    Linux
    Windows
}

structure ResubmitScanRequest {
    /// The latest, finished scan of the AMI.
    @required
    ScanId: String

    /// A unique, case-sensitive identifier that makes the request idempotent.
    @idempotencyToken
    ClientToken: String

    /// A new access role (default: the previous attempt's).
    AccessRoleArn: String

    /// A new OS user name (default: the previous attempt's).
    OsUserName: String

    /// A new scanning port (default: the previous attempt's).
    ScanningPort: Integer

    /// A new product ID (default: the previous attempt's).
    ProductId: String

    /// A new SNS topic (default: the previous attempt's).
    SnsTopicArn: String
}

structure ResubmitScanResult {
    /// The new scan.
    ScanId: String

    /// The scan it follows.
    PreviousScanId: String

    /// The AMI.
    SourceImageId: String

    /// The attempt number (the first scan is 1).
    Attempt: Integer

    /// The status of the new scan.
    Status: ScanStatus
}

/// One scan attempt of one AMI.
structure Scan {
    /// The scan's ID.
    ScanId: String

    /// The scanned AMI.
    SourceImage: SourceImage

    /// The AMI's platform.
    Platform: Platform

    /// The access role used.
    AccessRoleArn: String

    /// The OS user name used (Linux).
    OsUserName: String

    /// The scanning port used.
    ScanningPort: Integer

    /// The product whose exceptions apply.
    ProductId: String

    /// The topic notified of status changes.
    SnsTopicArn: String

    /// The status of the scan.
    Status: ScanStatus

    /// Why the scan ended in IngestionFailed, Failed or InternalError.
    ErrorDetail: ErrorDetail

    /// Findings by severity, once the scan phase has run.
    FindingCounts: FindingCounts

    /// The attempt number (the first scan is 1).
    Attempt: Integer

    /// The attempt this one resubmitted.
    PreviousScanId: String

    /// True for the most recent scan of the AMI.
    Latest: Boolean

    /// When the scan started.
    StartTime: DateTime

    /// When the scan last changed.
    LastUpdateTime: DateTime

    /// When the scan reached its final status.
    EndTime: DateTime
}

enum ScanErrorCode {
    AccessRoleNotFound
    AccessRoleTrustPolicyInvalid
    AccessRolePermissionsInsufficient
    SourceImageNotOwned
    SourceImageNotAvailable
    SourceImageRegionNotSupported
    EncryptedSnapshot
    UnsupportedRootDeviceType
    UnsupportedVirtualizationType
    UnsupportedArchitecture
    UnsupportedFileSystem
    ScanningPortUnreachable
    OsLoginFailed
    ScanTimedOut
    InternalFailure
}

list ScanList {
    member: Scan
}

enum ScanStatus {
    Ingesting
    Scanning
    Succeeded
    IssuesFound
    IngestionFailed
    Failed
    InternalError
}

structure ScanSummary {
    /// The scan's ID.
    ScanId: String

    /// The AMI.
    SourceImageId: String

    /// The status of the scan.
    Status: ScanStatus
}

list ScanSummaryList {
    member: ScanSummary
}

enum ScopeName {
    AMI_ID
    FILE_PATH
    PACKAGE_NAME
}

/// An AMI the seller owns.
structure SellerImage {
    /// The AMI's ID.
    ImageId: String

    /// The AMI's name.
    Name: String

    /// The AMI's description.
    Description: String

    /// The AMI's platform.
    Platform: Platform

    /// The AMI's architecture (x86_64, arm64, i386).
    Architecture: String

    /// The AMI's state (available, pending, failed).
    State: String

    /// The AMI's latest scan, if it was ever submitted.
    LatestScan: ScanSummary
}

list SellerImageList {
    member: SellerImage
}

enum Severity {
    CRITICAL
    HIGH
    MEDIUM
    LOW
    INFORMATIONAL
}

structure SourceImage {
    /// The AMI ID.
    Id: String

    /// The AMI name.
    Name: String
}

structure StartScansRequest {
    /// A unique, case-sensitive identifier that makes the request idempotent.
    @idempotencyToken
    ClientToken: String

    /// The AMIs to scan, 1 to 25.
    @required
    Images: ImageScanRequestList

    /// A topic notified of every status change of these scans.
    SnsTopicArn: String
}

structure StartScansResult {
    /// One scan per requested AMI, in request order.
    Scans: ScanSummaryList
}

string String

list StringList {
    member: String
}

/// A known vulnerability in an installed package.
structure Vulnerability {
    /// The CVE.
    CveId: String

    /// The affected package.
    PackageName: String

    /// The version in the AMI.
    InstalledVersion: String

    /// The first version with the fix, when one exists.
    FixedVersion: String

    /// The CVSS v3 base score.
    Cvss: Double
}

/// The client token was used before with different parameters.
@error("client")
structure IdempotentParameterMismatchException {
    Message: String
}

/// More than 25 AMIs in one request.
@error("client")
structure ImageLimitExceededException {
    Message: String
}

/// An internal error occurred; the request can be retried.
@error("server")
structure InternalServerErrorException {
    Message: String
}

/// The access role ARN is not a role ARN of the caller's account.
@error("client")
structure InvalidAccessRoleArnException {
    Message: String
}

/// A filter name or value is not valid.
@error("client")
structure InvalidFilterException {
    Message: String
}

/// MaxResults is out of range.
@error("client")
structure InvalidMaxResultsException {
    Message: String
}

/// The NextToken is not valid for this request.
@error("client")
structure InvalidNextTokenException {
    Message: String
}

/// The OS user name is missing (Linux) or does not match the documented pattern.
@error("client")
structure InvalidOsUserNameException {
    Message: String
}

/// The product does not exist or is not owned by the caller.
@error("client")
structure InvalidProductIdException {
    Message: String
}

/// The scan does not exist, or cannot be used for this request.
@error("client")
structure InvalidScanIdException {
    Message: String
}

/// The scanning port is outside 1-65535.
@error("client")
structure InvalidScanningPortException {
    Message: String
}

/// The SNS topic does not exist.
@error("client")
structure InvalidSnsTopicArnException {
    Message: String
}

/// The AMI is not valid, visible to the caller or unique in the request.
@error("client")
structure InvalidSourceImageIdException {
    Message: String
}

/// The AMI already has a scan in progress.
@error("client")
structure ScanInProgressException {
    Message: String
}

/// The account has reached its quota of scans in progress.
@error("client")
structure ScanLimitExceededException {
    Message: String
}

/// The caller is not allowed to perform the operation.
@error("client")
structure UnauthorizedOperationException {
    Message: String
}
