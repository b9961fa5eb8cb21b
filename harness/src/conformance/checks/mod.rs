//! The checks. Definitions are data (`DEFS`); the code of each section runs its checks in order.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use reqwest::Method;
use serde_json::{json, Value};

use super::{Binds, CheckDef, CheckResult, Cx, Exchange, Level, Profile, Section};
use crate::encode;

const RFC: Profile = Profile::Rfc;
const OKTA: Profile = Profile::Okta;
const ENTRA: Profile = Profile::Entra;
const IPSIE: Profile = Profile::Ipsie;
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
/// How a check's error says the server does not offer an optional feature (reported skipped).
pub const NOT_SUPPORTED: &str = "not supported by the server: ";
/// How a check's error says what it needs could not be made (reported blocked, not failed).
pub const UNPREPARED: &str = "what the check needs could not be made: ";

/// One row per check: `id, section, level, binds, profile, read-only, title, requirement`, then
/// `=> "the RFC's sentence, word for word"` where it has been read in the RFC's text.
macro_rules! defs {
    ($($id:literal, $section:literal, $level:ident, $binds:ident, $profile:ident, $ro:literal, $title:literal, $req:literal $(=> $quote:literal)?;)*) => {
        const DEFS: &[CheckDef] = &[$(CheckDef { id: $id, section: $section, level: Level::$level, binds: Binds::$binds, title: $title, requirement: $req, quote: concat!("" $(, $quote)?), profile: $profile, read_only: $ro },)*];
    };
}

defs! {
    "P-DISC-01", "RFC 7644 §4", Must, Provider, RFC, true, "ServiceProviderConfig is served", "GET /ServiceProviderConfig returns 200 with the ServiceProviderConfig schema URN in schemas." => "This endpoint SHALL return responses with a JSON object using a \"schemas\" attribute of \"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig\".";
    "P-DISC-02", "RFC 7643 §5", Must, Provider, RFC, true, "ServiceProviderConfig is complete", "patch, bulk, filter, changePassword, sort, etag and authenticationSchemes are present with the right JSON types." => "maxResults An integer value specifying the maximum number of resources returned in a response. REQUIRED. changePassword A complex type that specifies configuration options related to changing a password. REQUIRED.";
    "P-DISC-03", "RFC 7643 §5", Must, Provider, RFC, false, "Capabilities match behaviour", "What ServiceProviderConfig advertises holds: PATCH works when patch is true (501 when false), Bulk answers when bulk is true (501 when false), ETags come when etag is true, no page exceeds filter.maxResults.";
    "P-DISC-04", "RFC 7644 §4", Must, Provider, RFC, true, "ResourceTypes is a ListResponse", "GET /ResourceTypes returns a ListResponse of ResourceType resources." => "When returning multiple ResourceTypes or Schemas, the message form described by the \"urn:ietf:params:scim:api:messages:2.0:ListResponse\" (ListResponse) form SHALL be used as shown in Figure 3 and in Figure 9 below.";
    "P-DISC-05", "RFC 7643 §6", Must, Provider, RFC, true, "ResourceTypes are complete", "Each ResourceType has name, endpoint and schema; each schemaExtensions entry has schema and a boolean required." => "Unlike other core resources, all attributes are REQUIRED unless otherwise specified.";
    "P-DISC-06", "RFC 7644 §4", Must, Provider, RFC, true, "One ResourceType by name", "GET /ResourceTypes/{name} returns the single ResourceType, not a ListResponse.";
    "P-DISC-07", "RFC 7644 §4", Must, Provider, RFC, true, "Schemas is a ListResponse", "GET /Schemas returns every supported schema in a ListResponse." => "An HTTP GET to the endpoint \"/Schemas\" SHALL return all supported schemas in ListResponse format (see Figure 3).";
    "P-DISC-08", "RFC 7644 §4", May, Provider, RFC, true, "One Schema by URN", "GET /Schemas/{URN} returns that single Schema.";
    "P-DISC-09", "RFC 7643 §2.2", Must, Provider, RFC, true, "Attribute definitions are well formed", "Every attribute has a name, and every characteristic it gives has a legal value; one left out takes the default of RFC 7643 §2.2, and caseExact concerns strings only." => "If not otherwise stated in Section 7, SCIM attributes have the following characteristics: o \"required\" is \"false\" (i.e., not REQUIRED), o \"canonicalValues\": none assigned (for example, the \"type\" sub-attribute as described in Section 2.4), o \"caseExact\" is \"false\" (i.e., case-insensitive), o \"mutability\" is \"readWrite\" (i.e., modifiable), o \"returned\" is \"default\"";
    "P-DISC-10", "RFC 7643 §6-7", Must, Provider, RFC, true, "Referenced schemas exist", "Every schema and extension URN a ResourceType names is in /Schemas." => "This MUST be equal to the \"id\" attribute of the associated \"Schema\" resource.";
    "P-DISC-11", "RFC 7644 §4", Must, Provider, RFC, true, "Discovery ignores paging", "Sort and pagination parameters on discovery endpoints are ignored: the full set comes back." => "Query parameters described in Section 3.4.2, such as filtering, sorting, and pagination, SHALL be ignored.";
    "P-DISC-12", "RFC 7644 §4", Should, Provider, RFC, true, "Discovery refuses filters", "A filter on a discovery endpoint gets 403." => "If a \"filter\" is provided, the service provider SHOULD respond with HTTP status code 403 (Forbidden) to ensure that clients cannot incorrectly assume that any matching conditions specified in a filter are true.";
    "P-DISC-13", "RFC 9110", Should, Provider, RFC, false, "Discovery refuses writes", "POST, PUT, PATCH and DELETE on discovery endpoints are refused (405 or 501).";
    "P-AUTH-01", "RFC 7644 §3.12", Should, Provider, RFC, true, "No credential, 401", "A missing or invalid credential on a resource endpoint gets 401." => "401 (Unauthorized): Authorization failure. The authorization header is invalid or missing.";
    "P-AUTH-02", "RFC 7644 §2", Must, Provider, RFC, true, "401 carries WWW-Authenticate", "Every 401 response carries a WWW-Authenticate header." => "As per Section 4.1 of [RFC7235], a SCIM service provider SHALL indicate supported HTTP authentication schemes via the \"WWW-Authenticate\" header.";
    "P-AUTH-03", "RFC 7644 §3.12", Must, Provider, RFC, true, "401 body is a SCIM Error", "The 401 body is a SCIM Error with status \"401\"." => "In addition to returning an HTTP response code, implementers MUST return the errors in the body of the response in a JSON format, using the attributes described below.";
    "P-AUTH-04", "RFC 7644 §3.12", Should, Provider, RFC, true, "No permission, 403", "A caller that is authenticated but lacks permission gets 403, not 404 or 500." => "403 (Forbidden): Operation is not permitted based on the supplied authorization.";
    "P-SEC-01", "RFC 7644 §7.2", Must, Provider, RFC, true, "TLS off loopback", "A provider reached over the network uses TLS (https); plain http is acceptable only on loopback." => "The SCIM service provider MUST support TLS 1.2 [RFC5246]";
    "P-VERS-01", "RFC 7644 §3.13", Must, Provider, RFC, true, "Unknown versions are refused", "A request under an unsupported version prefix (/v9/Users) is refused with a 4xx." => "When specified, service providers MUST perform the operation using the desired version or reject the request.";
    "P-MEDIA-01", "RFC 7644 §3.8", Must, Provider, RFC, false, "UTF-8 scim+json bodies are accepted", "A UTF-8 body sent as application/scim+json, non-ASCII text included, is accepted and stored as sent." => "Servers MUST accept requests and be able to return JSON-structured responses using UTF-8 encoding [RFC3629].";
    "P-MEDIA-02", "RFC 7644 §3.8", Must, Provider, RFC, true, "application/scim+json is honoured", "With Accept: application/scim+json the response is JSON." => "Service providers MUST support the \"Accept\" header \"Accept: application/scim+json\" and SHOULD support the header \"Accept: application/json\", both of which specify JSON documents conforming to [RFC7159].";
    "P-MEDIA-03", "RFC 7644 §3.8", Should, Provider, RFC, true, "application/json is accepted", "With Accept: application/json the server answers JSON, not 406." => "Service providers MUST support the \"Accept\" header \"Accept: application/scim+json\" and SHOULD support the header \"Accept: application/json\", both of which specify JSON documents conforming to [RFC7159].";
    "P-MEDIA-04", "RFC 7644 §3.8", Should, Provider, RFC, true, "Responses are application/scim+json", "The response Content-Type is application/scim+json.";
    "P-MEDIA-05", "RFC 7644 §3.12", Must, Provider, RFC, false, "Malformed JSON is a 400", "A malformed JSON body gets 400 with a SCIM Error (scimType invalidSyntax SHOULD be set)." => "400 (Bad Request): Request is unparsable, syntactically incorrect, or violates schema.";
    "P-MEDIA-06", "RFC 7644 §3.4.2", Should, Provider, RFC, true, "Unknown parameters are ignored", "Unrecognised query parameters are ignored, not rejected." => "SCIM service providers MAY support additional query parameters not specified here and SHOULD ignore any query parameters they do not recognize instead of rejecting the query for versioning compatibility reasons.";
    "P-ERR-05", "RFC 7644 §3.12", Should, Provider, RFC, true, "Unknown path is a SCIM 404", "A request to an unknown endpoint gets 404 with a SCIM Error." => "404 (Not Found): Specified resource (e.g., User) or endpoint does not exist.";
    "P-ERR-01", "RFC 7644 §3.12", Must, Provider, RFC, false, "Errors carry the Error schema", "Every 4xx and 5xx has a JSON body whose schemas is [urn:ietf:params:scim:api:messages:2.0:Error]." => "In addition to returning an HTTP response code, implementers MUST return the errors in the body of the response in a JSON format, using the attributes described below.";
    "P-ERR-02", "RFC 7644 §3.12", Must, Provider, RFC, false, "Error status is a string", "The error status is the HTTP code as a JSON string equal to the response status." => "status The HTTP status code (see Section 6 of [RFC7231]) expressed as a JSON string. REQUIRED.";
    "P-ERR-03", "RFC 7644 §3.12", Must, Provider, RFC, false, "scimType is a known keyword", "scimType, when present, is one of the RFC's keywords and fits the status (409 for uniqueness, 400 for the rest)." => "scimType A SCIM detail error keyword. See Table 9. OPTIONAL.";
    "P-ERR-04", "RFC 7644 §3.12", Must, Provider, RFC, false, "detail is a string", "detail, when present, is a string." => "detail A detailed human-readable message. OPTIONAL.";
    "P-READ-02", "RFC 7644 §3.12", Should, Provider, RFC, true, "Unknown id is a SCIM 404", "GET on an unknown id gets 404 with a SCIM Error whose status is \"404\"." => "404 (Not Found): Specified resource (e.g., User) or endpoint does not exist.";
    "P-CREATE-01", "RFC 7644 §3.3", Must, Provider, RFC, false, "POST creates with 201", "POST to a resource endpoint returns 201 Created." => "When the service provider successfully creates the new resource, an HTTP response SHALL be returned with HTTP status code 201 (Created).";
    "P-CREATE-02", "RFC 7644 §3.3", Must, Provider, RFC, false, "201 has Location", "The 201 carries a Location header equal to meta.location." => "The URI of the created resource SHALL include, in the HTTP \"Location\" header and the HTTP body, a JSON representation [RFC7159] with the attribute \"meta.location\".";
    "P-CREATE-03", "RFC 7644 §3.3", Should, Provider, RFC, false, "201 body is the resource", "The 201 body is the full representation with id and meta." => "The response body SHOULD contain the service provider's representation of the newly created resource.";
    "P-CREATE-04", "RFC 7644 §3.3", Must, Provider, RFC, false, "Duplicate userName is 409", "A duplicate userName gets 409 with scimType uniqueness." => "If the service provider determines that the creation of the requested resource conflicts with existing resources (e.g., a \"User\" resource with a duplicate \"userName\"), the service provider MUST return HTTP status code 409 (Conflict) with a \"scimType\" error code of \"uniqueness\", as per Section 3.12.";
    "P-CREATE-05", "RFC 7644 §3.3", Must, Provider, RFC, false, "Client id is ignored", "readOnly id and meta in the body are ignored; the server issues its own id." => "In the request body, attributes whose mutability is \"readOnly\" (see Sections 2.2 and 7 of [RFC7643]) SHALL be ignored.";
    "P-CREATE-06", "RFC 7644 §3.3.1", Must, Provider, RFC, false, "meta.resourceType is set", "meta.resourceType is the endpoint's resource type (User on /Users)." => "When adding a resource to a specific endpoint, the meta attribute \"resourceType\" SHALL be set by the HTTP service provider to the corresponding resource type for the endpoint.";
    "P-CREATE-07", "RFC 7644 §3.12", Should, Client, RFC, false, "Wrong value type is 400", "A value of the wrong type (active: \"yes\") gets 400 invalidValue, not 500." => "invalidValue: A required value was missing, or the value specified was not compatible with the operation or attribute type (see Section 2.2 of [RFC7643]), or resource schema (see Section 4 of [RFC7643]).";
    "P-CREATE-08", "RFC 7644 §3.12", Must, Provider, RFC, false, "Failed create creates nothing", "After a failed create, a filter finds no such resource.";
    "P-USER-02", "RFC 7643 §4.1", Must, Provider, RFC, false, "userName is unique whatever its case", "userName is unique (caseExact false): the same name in another case gets 409 uniqueness." => "This identifier MUST be unique across the service provider's entire set of Users. This attribute is REQUIRED and is case insensitive.";
    "P-SCHEMA-02", "RFC 7643 §3.1", Must, Provider, RFC, false, "ids are stable and unique", "id is issued by the server, stable across reads, unique across resources and never \"bulkId\"." => "This identifier MUST be unique across the SCIM service provider's entire set of resources. It MUST be a stable, non-reassignable identifier that does not change when the same resource is returned in subsequent requests.";
    "P-SCHEMA-05", "RFC 7643 §2.3.5", Must, Provider, RFC, false, "dateTimes are xsd:dateTime", "meta.created, meta.lastModified and every dateTime attribute are valid xsd:dateTime values." => "The attribute value MUST be encoded as a valid xsd:dateTime as specified in Section 3.3.7 of [XML-Schema] and MUST include both a date and a time.";
    "P-SCHEMA-06", "RFC 7643 §2.3", Must, Provider, RFC, false, "Values have their schema types", "Every returned attribute has the JSON type its schema declares (booleans are true/false, complex values are objects).";
    "P-SCHEMA-07", "RFC 7643 §2.1", Must, Provider, RFC, false, "Attribute names ignore case", "USERNAME in a request body works like userName." => "Attribute names are case insensitive and are often \"camel-cased\" (e.g., \"camelCase\").";
    "P-SCHEMA-08", "RFC 7643 §2.5", Must, Provider, RFC, false, "null and [] unassign", "A null value or an empty array leaves the attribute unassigned: a later GET omits it or returns it empty." => "Unassigned attributes, the null value, or an empty array (in the case of a multi-valued attribute) SHALL be considered to be equivalent in \"state\".";
    "P-SCHEMA-09", "RFC 7643 §2.4", Must, Provider, RFC, false, "At most one primary", "At most one value of a multi-valued attribute has primary true." => "The primary attribute value \"true\" MUST appear no more than once.";
    "P-SCHEMA-10", "RFC 7643 §2.2", Must, Provider, RFC, false, "readOnly input is ignored", "id, meta and groups supplied on create or replace never change what the server holds." => "readOnly The attribute SHALL NOT be modified.";
    "P-SCHEMA-11", "RFC 7643 §2.2", Must, Provider, RFC, false, "immutable is set once", "An immutable attribute can be set at creation and is refused a later change." => "immutable The attribute MAY be defined at resource creation (e.g., POST) or at record replacement via a request (e.g., a PUT). The attribute SHALL NOT be updated.";
    "P-SCHEMA-13", "RFC 7643 §2.2", Must, Provider, RFC, false, "returned: always is always there", "Attributes the schema marks returned: always come back whatever attributes asks for." => "always The attribute is always returned, regardless of the contents of the \"attributes\" parameter.";
    "P-SCHEMA-14", "RFC 7643 §2.2", Must, Provider, RFC, false, "returned: request only on request", "Attributes the schema marks returned: request come back only when named in attributes." => "The attribute is returned in a SCIM query operation only if specified in the \"attributes\" parameter.";
    "P-PUT-02", "RFC 7644 §3.5.1", Must, Provider, RFC, false, "PUT replaces every writable value", "Every readWrite value in a PUT body (one per attribute of the discovered User schema) is what a later GET shows." => "readWrite, writeOnly Any values provided SHALL replace the existing attribute values.";
    "P-PUT-03", "RFC 7644 §3.5.1", Should, Provider, RFC, false, "PUT of a set immutable value is mutability", "A PUT that changes a set immutable attribute gets 400 mutability." => "immutable If one or more values are already set for the attribute, the input value(s) MUST match, or HTTP status code 400 SHOULD be returned with a \"scimType\" error code of \"mutability\".";
    "P-PUT-04", "RFC 7644 §3.5.1", Must, Provider, RFC, false, "PUT ignores readOnly values", "id, meta.created and groups in a PUT body leave the stored values unchanged." => "readOnly Any values provided SHALL be ignored.";
    "P-PUT-05", "RFC 7644 §3.5.1", Should, Client, RFC, false, "PUT needs required attributes", "A PUT without userName gets 400, and the user keeps its userName. Robustness: sending every required attribute is the client's obligation." => "If an attribute is \"required\", clients MUST specify the attribute in the PUT request.";
    "P-PUT-07", "RFC 7644 §3.12", Should, Provider, RFC, false, "PUT to a taken userName is 409", "A PUT that would duplicate a unique value gets 409 uniqueness." => "uniqueness: One or more of the attribute values are already in use or are reserved.";
    "P-PUT-08", "RFC 7643 §3.1", Must, Provider, RFC, false, "PUT moves lastModified and version", "After a PUT that changes something, meta.lastModified moves forward (and meta.version changes when etag is on)." => "lastModified The most recent DateTime that the details of this resource were updated at the service provider.";
    "P-DELETE-03", "RFC 7644 §3.6", Must, Provider, RFC, false, "Deleted is gone from queries", "A deleted resource appears in no later list, filter or .search." => "Service providers MUST omit the resource from future query results.";
    "P-DELETE-04", "RFC 7644 §3.6", Should, Provider, RFC, false, "A deleted name can be reused", "After a delete, creating the same userName succeeds." => "In addition, the service provider SHOULD NOT consider the deleted resource in conflict calculation.";
    "P-DELETE-06", "RFC 7644 §3.6", Should, Provider, RFC, false, "A deleted user leaves its groups", "After a User is deleted, no Group lists it in members and a filter on members.value finds none. RFC 7644 §3.6: \"Service providers MUST omit the resource from future query results\"; a reference left in another resource is how servers most often break it, hence SHOULD." => "Service providers MUST omit the resource from future query results.";
    "P-DELETE-07", "RFC 7644 §3.6", Should, Provider, RFC, false, "A deleted manager is no one's manager", "After a User is deleted, no User names it as enterprise manager." => "Service providers MUST omit the resource from future query results.";
    "P-DELETE-08", "RFC 7644 §3.6", Should, Provider, RFC, false, "A deleted group leaves User.groups", "After a Group is deleted, User.groups of its former members no longer lists it." => "Service providers MUST omit the resource from future query results.";
    "X-INFO-06", "RFC 7644 §3.6", Info, Provider, RFC, false, "Hard or soft delete", "Whether DELETE removes the resource or only deactivates it.";
    "I-OKTA-03", "Okta SCIM SPEC test R8", Must, Provider, OKTA, false, "Okta re-POST is 409", "Re-POSTing an existing userName gets 409.";
    "I-OKTA-06", "Okta SCIM guide", Must, Provider, OKTA, false, "Okta password is write-only", "A password sent on create is accepted and never returned.";
    "I-ENTRA-09", "Entra SCIM tutorial", Must, Provider, ENTRA, false, "Values come back as sent", "Multi-valued values (type, value, primary) are stored and returned exactly as sent.";
    "P-USER-01", "RFC 7643 §4.1", Must, Provider, RFC, false, "userName is required", "POST without userName gets 400." => "Each User MUST include a non-empty userName value.";
    "P-READ-01", "RFC 7644 §3.4.1", Must, Provider, RFC, false, "GET by id", "GET {endpoint}/{id} returns 200 and the resource with that id." => "If the resource exists, the server responds with HTTP status code 200 (OK) and includes the result in the body of the response.";
    "P-SCHEMA-01", "RFC 7643 §3", Must, Provider, RFC, false, "schemas lists the core URN", "Every returned resource has a schemas array holding its core schema URN." => "All representations of SCIM schemas MUST include a non-empty array with value(s) of the URIs supported by that representation.";
    "P-SCHEMA-03", "RFC 7643 §3.1", Must, Provider, RFC, false, "meta is complete", "meta carries resourceType, created, lastModified and location." => "When accepted by a service provider (e.g., after a SCIM create), the attributes \"id\" and \"meta\" (and its associated sub-attributes) MUST be assigned values by the service provider.";
    "P-SCHEMA-04", "RFC 7643 §3.1", Must, Provider, RFC, false, "lastModified moves", "lastModified equals created until the first change, then moves forward." => "If this resource has never been modified since its initial creation, the value MUST be the same as the value of \"created\".";
    "P-SCHEMA-12", "RFC 7643 §4.1.1", Must, Provider, RFC, false, "password is never returned", "A writeOnly password is accepted and appears in no response." => "The mutability of the password attribute is \"writeOnly\", indicating that the value MUST NOT be returned by a service provider in any form (the attribute characteristic \"returned\" is \"never\").";
    "P-PUT-01", "RFC 7644 §3.5.1", Must, Provider, RFC, false, "PUT returns the resource", "A successful PUT returns 200 and the updated resource." => "Unless otherwise specified, a successful PUT operation returns a 200 OK response code and the entire resource within the response body, enabling the client to correlate the client's and the service provider's views of the updated resource.";
    "P-PUT-06", "RFC 7644 §3.5.1", Must, Provider, RFC, false, "PUT never creates", "PUT to an unknown id gets 404." => "Because SCIM resource identifiers are assigned by the service provider, HTTP PUT MUST NOT be used to create new resources.";
    "P-DELETE-01", "RFC 7644 §3.6", Must, Provider, RFC, false, "DELETE is 204", "A successful DELETE returns 204 No Content." => "In response to a successful DELETE, the server SHALL return a successful HTTP status code 204 (No Content).";
    "P-DELETE-02", "RFC 7644 §3.6", Must, Provider, RFC, false, "Deleted means gone", "After DELETE, GET on that id gets 404." => "Service providers MAY choose not to permanently delete the resource but MUST return a 404 (Not Found) error code for all operations associated with the previously deleted resource.";
    "P-DELETE-05", "RFC 7644 §3.12", Should, Provider, RFC, false, "DELETE of unknown id is 404", "DELETE on an unknown id gets 404 with a SCIM Error." => "404 (Not Found): Specified resource (e.g., User) or endpoint does not exist.";
    "P-LIST-01", "RFC 7644 §3.4.2", Must, Provider, RFC, false, "List is a ListResponse", "GET {endpoint} returns 200 with the ListResponse schema." => "Responses MUST be identified using the following URI: \"urn:ietf:params:scim:api:messages:2.0:ListResponse\".";
    "P-LIST-02", "RFC 7644 §3.4.2", Must, Provider, RFC, false, "totalResults is an integer", "The ListResponse has an integer totalResults." => "totalResults The total number of results returned by the list or query operation. The value may be larger than the number of resources returned, such as when returning a single page (see Section 3.4.2.4) of results where multiple pages are available. REQUIRED.";
    "P-LIST-03", "RFC 7644 §3.4.2", Must, Provider, RFC, false, "Resources is present", "Resources (exact key) is present whenever totalResults > 0." => "Resources A multi-valued list of complex objects containing the requested resources. This MAY be a subset of the full set of resources if pagination (Section 3.4.2.4) is requested. REQUIRED if \"totalResults\" is non-zero.";
    "P-LIST-05", "RFC 7644 §3.4.2", Must, Provider, RFC, false, "No match is 200 with 0", "A query matching nothing returns 200 with totalResults 0, not 404." => "A query that does not return any matches SHALL return success (HTTP status code 200) with \"totalResults\" set to a value of 0.";
    "P-LIST-04", "RFC 7644 §3.4.2", Must, Provider, RFC, false, "Pages carry startIndex and itemsPerPage", "startIndex and itemsPerPage are present when results are paginated." => "startIndex The 1-based index of the first result in the current set of list results. REQUIRED when partial results are returned due to pagination.";
    "P-LIST-06", "RFC 7644 §3.4.2", Must, Provider, RFC, false, "Too many is tooMany", "A request for more than filter.maxResults resources gets at most maxResults, or 400 tooMany." => "the server SHALL reject the request by returning an HTTP response with HTTP status code 400 (Bad Request) and JSON attribute \"scimType\" set to \"tooMany\" (see Table 9).";
    "P-LIST-07", "RFC 7644 §3.4.2.1", May, Provider, RFC, false, "Root query spans types", "GET on the server root with a filter returns matching resources of every type." => "A query against a server root indicates that all resources within the server SHALL be included, subject to filtering.";
    "P-FILTER-01", "RFC 7644 §3.4.2.2", Must, Provider, RFC, false, "eq and ne", "eq and ne select exactly the equal and unequal resources." => "When specified, only those resources matching the filter expression SHALL be returned.";
    "P-FILTER-02", "RFC 7644 §3.4.2.2", Must, Provider, RFC, false, "co, sw, ew", "co, sw and ew match substring, prefix and suffix." => "When specified, only those resources matching the filter expression SHALL be returned.";
    "P-FILTER-03", "RFC 7644 §3.4.2.2", Must, Provider, RFC, false, "pr", "pr matches attributes with a value and excludes unassigned ones." => "When specified, only those resources matching the filter expression SHALL be returned.";
    "P-FILTER-04", "RFC 7644 §3.4.2.2", Must, Provider, RFC, false, "gt, ge, lt, le", "Ordering operators compare strings lexically and dateTimes chronologically." => "When specified, only those resources matching the filter expression SHALL be returned.";
    "P-FILTER-05", "RFC 7644 §3.4.2.2", Must, Provider, RFC, false, "Ordering a boolean is invalidFilter", "gt, ge, lt or le on a Boolean gets 400 invalidFilter." => "Boolean and Binary attributes SHALL cause a failed response (HTTP status code 400) with \"scimType\" of \"invalidFilter\".";
    "P-FILTER-06", "RFC 7644 §3.4.2.2", Must, Provider, RFC, false, "Names and operators ignore case", "USERNAME EQ \"x\" works like userName eq \"x\"." => "Attribute names and attribute operators used in filters are case insensitive.";
    "P-FILTER-07", "RFC 7644 §3.4.2.2", Must, Provider, RFC, false, "caseExact is followed", "userName (caseExact false) matches in any case." => "When comparing attributes of type String, the case sensitivity for String type attributes SHALL be determined by the attribute's \"caseExact\" characteristic (see Section 2.2 of [RFC7643]).";
    "P-FILTER-08", "RFC 7644 §3.4.2.2", Must, Provider, RFC, false, "and binds tighter than or", "a or b and c means a or (b and c)." => "Filters MUST be evaluated using the following order of operations, in order of precedence: 1. Grouping operators 2. Logical operators - where \"not\" takes precedence over \"and\", which takes precedence over \"or\" 3. Attribute operators";
    "P-FILTER-09", "RFC 7644 §3.4.2.2", Must, Provider, RFC, false, "Parentheses and not", "Parentheses override precedence, and not (...) negates a group." => "Filters MUST be evaluated using the following order of operations, in order of precedence: 1. Grouping operators 2. Logical operators - where \"not\" takes precedence over \"and\", which takes precedence over \"or\" 3. Attribute operators";
    "P-FILTER-10", "RFC 7644 §3.4.2.2", Must, Provider, RFC, false, "Any value of a multi-valued attribute", "emails.value matches when any email matches, not only the primary one." => "If the specified attribute in a filter expression is a multi-valued attribute, the filter matches if any of the values of the specified attribute match the specified criterion; e.g., if a User has multiple \"emails\" values, only one has to match for the entire User to match.";
    "P-FILTER-11", "RFC 7644 §3.4.2.2", Must, Provider, RFC, false, "Value filters and sub-attributes", "emails[type eq \"work\" and value co \"x\"] and name.givenName eq \"x\" work." => "For complex attributes, a fully qualified sub-attribute MUST be specified using standard attribute notation (Section 3.10).";
    "P-FILTER-12", "RFC 7644 §3.4.2.2", Must, Provider, RFC, false, "Bad filter is invalidFilter", "An invalid filter gets 400 with scimType invalidFilter." => "Providers MUST decline to filter results if the specified filter operation is not recognized and return an HTTP 400 error with a \"scimType\" error of \"invalidFilter\" and an appropriate human-readable response as per Section 3.12.";
    "P-FILTER-13", "RFC 7644 §3.4.2.2", Must, Provider, RFC, false, "Every literal parses", "Strings with escaped quotes, true, false and null are valid comparison values." => "SCIM filters MUST conform to the following ABNF [RFC5234] rules as specified below:";
    "P-FILTER-14", "RFC 7644 §3.4.2.2", May, Provider, RFC, false, "Filter on schemas", "schemas eq \"<extension URN>\" selects the resources carrying that schema." => "Clients MAY query by schema or schema extensions by using a filter expression including the \"schemas\" attribute (as shown in Figure 2).";
    "P-FILTER-15", "RFC 7644 §3.12", Should, Provider, RFC, true, "Unsupported filter is refused", "With filter.supported false, a filter gets 400 invalidFilter or 501, never an unfiltered list.";
    "X-INFO-01", "RFC 7644 §3.4.2.2", Info, Provider, RFC, true, "Filter on an undefined attribute", "The answer to a filter on an attribute no schema defines.";
    "I-ENTRA-05", "Entra SCIM tutorial", Must, Provider, ENTRA, false, "Entra's look-up filters", "userName eq, externalId eq, emails[type eq \"work\"].value eq and displayName eq, joined with and, all work.";
    "I-OKTA-02", "Okta SCIM SPEC test R9", Must, Provider, OKTA, false, "Okta finds userName in any case", "userName eq in another case finds the user.";
    "P-PAGE-01", "RFC 7644 §3.4.2.4", Must, Provider, RFC, false, "startIndex is 1-based", "startIndex=k returns the k-th match first and echoes startIndex k." => "startIndex: The 1-based index of the first query result. A value less than 1 SHALL be interpreted as 1.";
    "P-PAGE-02", "RFC 7644 §3.4.2.4", Must, Provider, RFC, false, "startIndex below 1 is 1", "startIndex 0 is treated as 1." => "startIndex: The 1-based index of the first query result. A value less than 1 SHALL be interpreted as 1.";
    "P-PAGE-03", "RFC 7644 §3.4.2.4", Must, Provider, RFC, false, "count=0", "count=0 returns totalResults and no resources." => "count: A value of \"0\" indicates that no resource results are to be returned except for \"totalResults\".";
    "P-PAGE-04", "RFC 7644 §3.4.2.4", Must, Provider, RFC, false, "Negative count is 0", "count=-1 is treated as 0: totalResults and no resources." => "count: A negative value SHALL be interpreted as \"0\".";
    "P-PAGE-05", "RFC 7644 §3.4.2.4", Must, Provider, RFC, false, "Pages respect count", "No page holds more than count resources, and itemsPerPage equals their number." => "count: When specified, the service provider MUST NOT return more results than specified, although it MAY return fewer results.";
    "P-PAGE-06", "RFC 7644 §3.4.2.4", Must, Provider, RFC, false, "Pages cover everything once", "Walking all pages yields each resource exactly once." => "startIndex: The 1-based index of the first query result.";
    "P-PAGE-07", "RFC 7643 §5", Must, Provider, RFC, false, "maxResults caps pages", "With no count, or a count above filter.maxResults, no more than maxResults resources come back." => "maxResults An integer value specifying the maximum number of resources returned in a response.";
    "I-OKTA-01", "Okta SCIM SPEC test R1", Must, Provider, OKTA, false, "Okta's first page", "count=1&startIndex=1 returns numeric totalResults, startIndex and itemsPerPage.";
    "P-PATCH-02", "RFC 7644 §3.5.2", Should, Client, RFC, false, "PatchOp message is checked", "A body without the PatchOp schema or with an empty Operations array gets 400. Robustness: \"MUST contain schemas\" and Operations \"an array of one or more patch operations\" bind the client." => "The body of each request MUST contain the \"schemas\" attribute with the URI value of \"urn:ietf:params:scim:api:messages:2.0:PatchOp\". The body of an HTTP PATCH request MUST contain the attribute \"Operations\", whose value is an array of one or more PATCH operations.";
    "P-PATCH-01", "RFC 7644 §3.12", Should, Provider, RFC, false, "PATCH unsupported is 501", "With patch.supported false, PATCH gets 501." => "501 (Not Implemented): Service provider does not support the request operation, e.g., PATCH.";
    "P-PATCH-03", "RFC 7644 §3.5.2", Must, Provider, RFC, false, "PATCH answers 200 or 204", "A successful PATCH returns 200 with the resource or 204; 200 when attributes is sent." => "On successful completion, the server either MUST return a 200 OK response code and the entire resource within the response body, subject to the \"attributes\" query parameter (see Section 3.9), or MAY return HTTP status code 204 (No Content) and the appropriate response headers for a successful PATCH request. The server MUST return a 200 OK if the \"attributes\" parameter is specified in the request.";
    "P-PATCH-04", "RFC 7644 §3.5.2", Must, Provider, RFC, false, "Operations apply in order", "add then replace of the same attribute leaves the replaced value." => "Operations are applied sequentially in the order they appear in the array. Each operation in the sequence is applied to the target resource; the resulting resource becomes the target of the next operation.";
    "P-PATCH-05", "RFC 7644 §3.5.2", Must, Provider, RFC, false, "PATCH is atomic", "When one operation fails, none is applied and an error is returned." => "A PATCH request, regardless of the number of operations, SHALL be treated as atomic. If a single operation encounters an error condition, the original SCIM resource MUST be restored, and a failure status SHALL be returned.";
    "P-PATCH-06", "RFC 7644 §3.5.2.1", Must, Provider, RFC, false, "Pathless add merges", "add without path merges the value object's attributes into the resource." => "If omitted, the target location is assumed to be the resource itself. The \"value\" parameter contains a set of attributes to be added to the resource.";
    "P-PATCH-07", "RFC 7644 §3.5.2.1", Must, Provider, RFC, false, "add appends to multi-valued", "add to a multi-valued attribute appends the values." => "If the target location specifies a multi-valued attribute, a new value is added to the attribute.";
    "P-PATCH-08", "RFC 7644 §3.5.2.1", Must, Provider, RFC, false, "add sets single-valued and complex", "add on a single-valued attribute sets it; on a complex one it sets the given sub-attributes and keeps the rest." => "If the target location specifies a single-valued attribute, the existing value is replaced.";
    "P-PATCH-09", "RFC 7644 §3.5.2.1", Should, Provider, RFC, false, "Adding what is there changes nothing", "add of a value already present succeeds and leaves meta.lastModified unchanged." => "If the target location already contains the value specified, no changes SHOULD be made to the resource, and a success response SHOULD be returned. Unless other operations change the resource, this operation SHALL NOT change the modify timestamp of the resource.";
    "P-PATCH-10", "RFC 7644 §3.5.2.3", Must, Provider, RFC, false, "Pathless replace", "replace without path replaces the listed attributes (multi-valued ones wholly) and keeps the others." => "If the \"path\" parameter is omitted, the target is assumed to be the resource itself. In this case, the \"value\" attribute SHALL contain a list of one or more attributes that are to be replaced.";
    "P-PATCH-11", "RFC 7644 §3.5.2.3", Must, Provider, RFC, false, "replace of a multi-valued attribute", "replace on a multi-valued attribute without a filter replaces all its values." => "If the target location is a multi-valued attribute and no filter is specified, the attribute and all values are replaced.";
    "P-PATCH-12", "RFC 7644 §3.5.2.3", Must, Provider, RFC, false, "replace with a value path", "replace on emails[type eq \"work\"].value changes only that sub-attribute of the matching value." => "If the target location is a multi-valued attribute and a value selection (\"valuePath\") filter is specified that matches one or more values of the multi-valued attribute, then all matching record values SHALL be replaced.";
    "P-PATCH-13", "RFC 7644 §3.5.2.3", Must, Provider, RFC, false, "replace with no match is noTarget", "replace with a value filter that matches nothing gets 400 noTarget and changes nothing." => "If the target location is a multi-valued attribute for which a value selection filter (\"valuePath\") has been supplied and no record match was made, the service provider SHALL indicate failure by returning HTTP status code 400 and a \"scimType\" error code of \"noTarget\".";
    "P-PATCH-14", "RFC 7644 §3.5.2.3", Must, Provider, RFC, false, "replace of an unassigned attribute adds", "replace on an attribute with no value acts as add." => "If the target location path specifies an attribute that does not exist, the service provider SHALL treat the operation as an \"add\".";
    "P-PATCH-15", "RFC 7644 §3.5.2.3", Must, Provider, RFC, false, "replace keeps other sub-attributes", "replace on name with only givenName leaves familyName as it was." => "If the target location specifies a complex attribute, a set of sub-attributes SHALL be specified in the \"value\" parameter, which replaces any existing values or adds where an attribute did not previously exist. Sub-attributes that are not specified in the \"value\" parameter are left unchanged.";
    "P-PATCH-16", "RFC 7644 §3.5.2.2", Must, Provider, RFC, false, "remove without path is noTarget", "remove without path gets 400 with scimType noTarget." => "If \"path\" is unspecified, the operation fails with HTTP status code 400 and a \"scimType\" error code of \"noTarget\".";
    "P-PATCH-17", "RFC 7644 §3.5.2.2", Must, Provider, RFC, false, "remove unassigns", "remove of a single-valued attribute leaves it unassigned." => "If the target location is a single-value attribute, the attribute and its associated value is removed, and the attribute SHALL be considered unassigned.";
    "P-PATCH-19", "RFC 7644 §3.5.2.2", Must, Provider, RFC, false, "Removing a required attribute is mutability", "remove of userName gets an error with scimType mutability." => "If an attribute is removed or becomes unassigned and is defined as a required attribute or a read-only attribute, the server SHALL return an HTTP response status code and a JSON detail error response as defined in Section 3.12, with a \"scimType\" error code of \"mutability\".";
    "P-PATCH-20", "RFC 7644 §3.5.2", Must, Provider, RFC, false, "readOnly targets are refused", "A PATCH that replaces id fails with 400 mutability." => "An operation that is not compatible with an attribute's mutability or schema SHALL return the appropriate HTTP response status code and a JSON detail error response as defined in Section 3.12.";
    "P-PATCH-21", "RFC 7644 §3.12", Should, Provider, RFC, false, "Bad path is invalidPath", "A malformed path or one naming an undefined attribute gets 400 invalidPath." => "invalidPath: The \"path\" attribute was invalid or malformed (see Figure 7).";
    "P-PATCH-22", "RFC 7644 §3.12", Should, Provider, RFC, false, "Wrong value type is invalidValue", "A value of the wrong type for the target attribute gets 400 invalidValue." => "invalidValue: A required value was missing, or the value specified was not compatible with the operation or attribute type (see Section 2.2 of [RFC7643]), or resource schema (see Section 4 of [RFC7643]).";
    "P-PATCH-24", "RFC 7644 §3.5.2", Must, Provider, RFC, false, "One primary after PATCH", "Setting primary true on one value leaves every other value of the attribute non-primary." => "For multi-valued attributes, a PATCH operation that sets a value's \"primary\" sub-attribute to \"true\" SHALL cause the server to automatically set \"primary\" to \"false\" for any other values in the array.";
    "P-PATCH-25", "RFC 7644 §3.12", Should, Provider, RFC, false, "PATCH of unknown id is 404", "PATCH on an unknown id gets 404." => "404 (Not Found): Specified resource (e.g., User) or endpoint does not exist.";
    "I-OKTA-05", "Okta SCIM 2.0 guide", Must, Provider, OKTA, false, "Okta deactivates pathlessly", "{op: replace, value: {active: false}} deactivates and the same with true reactivates.";
    "I-ENTRA-01", "Entra SCIM guidelines", Must, Provider, ENTRA, false, "Op names ignore case", "PATCH op is matched case-insensitively (Replace, Add, Remove).";
    "I-ENTRA-03", "Entra compatibility notes", Should, Provider, ENTRA, false, "\"False\" deactivates", "{op: Replace, path: active, value: \"False\"} (a string) deactivates the user.";
    "P-ETAG-01", "RFC 7644 §3.14", Must, Provider, RFC, false, "ETag header on resources", "Responses that carry a resource carry an ETag header." => "When supported, SCIM ETags MUST be specified as an HTTP header and SHOULD be specified within the 'version' attribute contained in the resource's 'meta' attribute.";
    "P-ETAG-02", "RFC 7644 §3.14", Should, Provider, RFC, false, "meta.version is the ETag", "meta.version equals the ETag header." => "When supported, SCIM ETags MUST be specified as an HTTP header and SHOULD be specified within the 'version' attribute contained in the resource's 'meta' attribute.";
    "P-ETAG-03", "RFC 7232 §3.2", Should, Provider, RFC, false, "If-None-Match gives 304", "GET with If-None-Match equal to the current ETag gets 304 Not Modified.";
    "P-ETAG-04", "RFC 7232 §3.1", Must, Provider, RFC, false, "Stale If-Match gives 412", "A write with a stale If-Match gets 412 and changes nothing.";
    "P-ETAG-05", "RFC 7232", Must, Provider, RFC, false, "Matching If-Match proceeds", "A matching If-Match lets the write proceed, and the new ETag differs.";
    "P-ETAG-06", "RFC 7232 §2.3", Must, Provider, RFC, false, "ETags follow the representation", "The ETag stays the same while the resource does not change and changes when it does.";
    "P-SORT-01", "RFC 7644 §3.4.2.3", Must, Provider, RFC, false, "sortBy sorts ascending", "sortBy=userName without sortOrder sorts ascending." => "If a value for \"sortBy\" is provided and no \"sortOrder\" is specified, \"sortOrder\" SHALL default to ascending.";
    "P-SORT-02", "RFC 7644 §3.4.2.3", Must, Provider, RFC, false, "descending reverses", "sortOrder=descending reverses the order." => "sortOrder The order in which the \"sortBy\" parameter is applied. Allowed values are \"ascending\" and \"descending\".";
    "P-SORT-03", "RFC 7644 §3.4.2.3", Must, Provider, RFC, false, "Sorting follows caseExact", "userName (caseExact false) sorts ignoring case; externalId (caseExact true) sorts by code point." => "\"sortOrder\" MUST sort according to the attribute type; i.e., for case-insensitive attributes, sort the result using case-insensitive Unicode alphabetic sort order with no specific locale implied, and for case-exact attribute types, sort the result using case-sensitive Unicode alphabetic sort order.";
    "P-SORT-04", "RFC 7644 §3.4.2.3", Must, Provider, RFC, false, "Missing values sort last", "Resources without the sortBy value come last ascending and first descending." => "For all attribute types, if there is no data for the specified \"sortBy\" value, they are sorted via the \"sortOrder\" parameter, i.e., they are ordered last if ascending and first if descending.";
    "P-SORT-05", "RFC 7644 §3.4.2.3", Must, Provider, RFC, false, "Sorting by multi-valued and sub-attributes", "sortBy=emails uses the primary value; sortBy=name.givenName sorts by the sub-attribute." => "if it's a multi-valued attribute, resources are sorted by the value of the primary attribute (see Section 2.4 of [RFC7643]), if any, or else the first value in the list, if any.";
    "X-INFO-04", "RFC 7644 §3.4.2.3", Info, Provider, RFC, true, "sortBy without sort support", "The answer to sortBy when sort.supported is false.";
    "P-ATTR-01", "RFC 7644 §3.9", Must, Provider, RFC, false, "attributes selects", "attributes=userName returns only userName plus the always-returned attributes (id)." => "attributes When specified, the default list of attributes SHALL be overridden, and each resource returned MUST contain the minimum set of resource attributes and any attributes or sub-attributes explicitly requested by the \"attributes\" parameter.";
    "P-ATTR-02", "RFC 7644 §3.9", Must, Provider, RFC, false, "excludedAttributes drops", "excludedAttributes=emails drops emails from the resource." => "excludedAttributes When specified, each resource returned MUST contain the minimum set of resource attributes. Additionally, the default set of attributes minus those attributes listed in \"excludedAttributes\" is returned.";
    "P-ATTR-03", "RFC 7644 §3.9", Must, Provider, RFC, false, "id cannot be excluded", "excludedAttributes has no effect on returned: always attributes such as id." => "This parameter SHALL have no effect on attributes whose schema \"returned\" setting is \"always\" (see Sections 2.2 and 7 of [RFC7643]).";
    "P-ATTR-04", "RFC 7644 §3.9", Must, Provider, RFC, false, "Selection on every answer", "attributes works on lists, .search and the answers to POST, PUT and PATCH." => "Clients MAY request a partial resource representation on any operation that returns a resource within the response by specifying either of the mutually exclusive URL query parameters \"attributes\" or \"excludedAttributes\", as follows:";
    "P-ATTR-05", "RFC 7644 §3.10", Must, Provider, RFC, false, "Sub-attribute and URN names", "attributes takes sub-attribute paths and fully qualified URNs, in any case." => "In general, attributes are uniquely identified by prefixing the attribute name with its schema URN separated by a colon (\":\") character";
    "X-INFO-02", "RFC 7644 §3.9", Info, Provider, RFC, true, "attributes with excludedAttributes", "The answer when both attributes and excludedAttributes are sent.";
    "P-SEARCH-01", "RFC 7644 §3.4.3", Must, Provider, RFC, false, "POST .search", "POST {endpoint}/.search with a SearchRequest returns the same ListResponse as the equivalent GET." => "The inclusion of \"/.search\" on the end of a valid SCIM endpoint SHALL be used to indicate that the HTTP POST verb is intended to be a query operation.";
    "P-SEARCH-02", "RFC 7644 §3.4.3", Must, Provider, RFC, false, ".search honours every field", "filter, attributes, excludedAttributes, sortBy, sortOrder, startIndex and count in the body are all honoured." => "The body of the POST request MAY include any of the parameters defined in Section 3.4.2.";
    "P-SEARCH-03", "RFC 7644 §3.4.3", May, Provider, RFC, false, "Root .search spans types", "POST /.search at the root searches every resource type.";
    "P-SEARCH-04", "RFC 7644 §3.12", Should, Client, RFC, false, "Bad SearchRequest is invalidSyntax", "A SearchRequest with the wrong schema or bad types gets 400 invalidSyntax." => "invalidSyntax: The request body message structure was invalid or did not conform to the request schema.";
    "P-GROUP-01", "RFC 7643 §4.2", Must, Provider, RFC, false, "displayName is required", "POST /Groups without displayName gets 400." => "displayName A human-readable name for the Group. REQUIRED.";
    "P-GROUP-02", "RFC 7643 §4.2", Must, Provider, RFC, false, "members reference ids", "members[].value is the member's id and type, when present, is User or Group." => "The \"value\" sub-attribute contains the value of an \"id\" attribute of a SCIM resource, and the \"$ref\" sub-attribute must be the URI of a SCIM resource such as a \"User\", or a \"Group\".";
    "P-GROUP-03", "RFC 7643 §4.2", Must, Provider, RFC, false, "A large group reads back whole", "A group given --large-group members (1,000 by default), built in PATCHes of 100, lists every one of them." => "members A list of members of the Group.";
    "P-GROUP-04", "RFC 7644 §3.5", Must, Provider, RFC, false, "One member in and out of a large group", "On the large group, excludedAttributes=members leaves the members out, and one member added then removed by PATCH changes exactly that member." => "Resources such as Groups may be very large; hence, implementers SHOULD support HTTP PATCH [RFC5789] to enable partial resource modifications.";
    "P-USER-03", "RFC 7643 §4.1.2", Must, Provider, RFC, false, "User.groups follows /Groups", "User.groups lists the groups a user was added to through /Groups and drops them when removed." => "groups A list of groups to which the user belongs, either through direct membership, through nested groups, or dynamically calculated.";
    "P-SCHEMA-15", "RFC 7643 §2.3.7", Should, Provider, RFC, false, "$ref is the member's URI", "members[].$ref is the URI of the referenced resource, absolute or relative to the base URL." => "The value MUST be the absolute or relative URI of the target resource.";
    "P-PATCH-18", "RFC 7644 §3.5.2.2", Must, Provider, RFC, false, "remove with a value path", "remove of members[value eq \"id\"] removes only that member." => "If the target location is a multi-valued attribute and a complex filter is specified comparing a \"value\", the values matched by the filter are removed.";
    "X-INFO-03", "RFC 7644 §3.5.2", Info, Provider, RFC, false, "Unknown member id", "Whether a Group member whose id does not exist is accepted or refused.";
    "X-INFO-05", "RFC 7643 §2.5", Info, Provider, RFC, false, "Empty group", "After the last member is removed: members omitted, or [].";
    "I-OKTA-07", "Okta SCIM guide (group push)", Must, Provider, OKTA, false, "Okta group push", "PATCH members add (value array), members[value eq \"id\"] remove and displayName replace all work.";
    "I-ENTRA-04", "Entra compatibility notes", Should, Provider, ENTRA, false, "Legacy member removal", "{op: Remove, path: members, value: [{value: id}]} removes only that member.";
    "I-ENTRA-06", "Entra SCIM tutorial", Must, Provider, ENTRA, false, "excludedAttributes=members", "excludedAttributes=members works on GET /Groups/{id} and on filtered /Groups.";
    "I-ENTRA-08", "Entra SCIM tutorial", Must, Provider, ENTRA, false, "Group names are unique", "A second group with the same displayName gets 409.";
    "P-ENT-01", "RFC 7643 §3.3", Must, Provider, RFC, false, "Enterprise attributes under their URN", "Enterprise attributes sit under the extension URN key, which schemas then lists." => "Except for the base object schema, the schema extension URI SHALL be used as a JSON container to distinguish attributes belonging to the extension namespace from base schema attributes.";
    "P-ENT-02", "RFC 7643 §4.3", Must, Provider, RFC, false, "manager is a reference", "manager.value is the manager's id; a client's manager.displayName is not stored." => "value The \"id\" of the SCIM resource representing the user's manager. RECOMMENDED. $ref The URI of the SCIM resource representing the User's manager. RECOMMENDED. displayName The displayName of the user's manager. This attribute is OPTIONAL, and mutability is \"readOnly\".";
    "P-ENT-03", "RFC 7644 §3.10", Must, Provider, RFC, false, "Qualified names everywhere", "urn:...:enterprise:2.0:User:employeeNumber works in attributes, filter and sortBy." => "In general, attributes are uniquely identified by prefixing the attribute name with its schema URN separated by a colon (\":\") character";
    "P-PATCH-23", "RFC 7644 §3.5.2", Must, Provider, RFC, false, "PATCH paths with the extension URN", "add, replace and remove with path urn:...:enterprise:2.0:User:department all work." => "Clients MAY implicitly modify the \"schemas\" attribute by adding (or replacing) an attribute with its fully qualified name, including schema URN.";
    "I-ENTRA-02", "Entra compatibility notes", Must, Provider, ENTRA, false, "Dotted and qualified keys", "A pathless replace with \"name.givenName\" and URN-qualified keys updates those attributes.";
    "I-ENTRA-07", "Entra SCIM tutorial", Must, Provider, ENTRA, false, "Inactive users stay visible", "A user set active false is still returned by GET and by filters.";
    "I-ENTRA-10", "Entra SCIM tutorial", Must, Provider, ENTRA, true, "Schemas without nulls", "/Schemas has no null values and camelCase characteristic values.";
    "I-OKTA-04", "Okta SCIM SPEC test R11-R12", Must, Provider, OKTA, true, "Okta error bodies", "401 and 404 carry the Error schema, a string status and a non-empty detail.";
    "P-ME-01", "RFC 7644 §3.11", May, Provider, RFC, true, "/Me is the caller", "GET /Me returns the authenticated subject's resource." => "A client MAY use a URL of the form \"<base-URI>/Me\" as a URI alias for the User or other resource associated with the currently authenticated subject for any SCIM operation.";
    "P-ME-02", "RFC 7644 §3.11", Should, Provider, RFC, true, "Unsupported /Me is 501", "When /Me is unsupported, or the subject is not a SCIM resource, the answer is 501." => "A service provider that does NOT support this feature SHOULD respond with HTTP status code 501 (Not Implemented).";
    "P-ME-03", "RFC 7644 §3.11", Must, Provider, RFC, true, "/Me points at the real resource", "Answers through /Me carry the permanent URI in Location and meta.location, never /Me." => "In any response, the HTTP \"Location\" header MUST be the permanent location of the aliased resource associated with the authenticated subject.";
    "P-BULK-01", "RFC 7644 §3.7", Must, Provider, RFC, false, "Bulk answers a BulkResponse", "POST /Bulk returns 200 with a BulkResponse." => "If a bulk job is processed successfully, HTTP response code 200 OK MUST be returned; otherwise, an appropriate HTTP error code MUST be returned.";
    "P-BULK-02", "RFC 7644 §3.7.3", Must, Provider, RFC, false, "Bulk reports every operation", "Each operation's result has method, the echoed bulkId, location (except failed POSTs) and the status a single request would get." => "The service provider response MUST include the result of all processed operations. A \"location\" attribute that includes the resource's endpoint MUST be returned for all operations except for failed POST operations (which have no location).";
    "P-BULK-03", "RFC 7644 §3.7", Must, Provider, RFC, false, "Failed operations explain", "A failed operation carries its status and a SCIM Error response with a detail." => "When indicating an error, the \"response\" attribute MUST contain the detail error response as per Section 3.12.";
    "P-BULK-04", "RFC 7644 §3.7.2", Must, Provider, RFC, false, "bulkId references resolve", "bulkId:<id> in a later operation becomes the id of the resource created earlier in the request." => "The service provider MUST replace the string \"bulkId:qwerty\" with the permanent resource id once created.";
    "P-BULK-05", "RFC 7644 §3.7.1", Must, Provider, RFC, false, "Circular references end", "A bulkId cycle is resolved or its operations fail with 409, in bounded time." => "The service provider MUST try to resolve circular cross-references between resources in a single bulk job but MAY stop after a failed attempt and instead return HTTP status code 409 (Conflict).";
    "P-BULK-06", "RFC 7644 §3.7", Should, Client, RFC, false, "Bad operations fail alone", "A POST without bulkId or an operation without path fails with 400 (invalidSyntax, or invalidValue: \"A required value was missing\", Table 9); the others still run. Robustness: bulkId and path are the client's to send." => "REQUIRED when \"method\" is \"POST\".";
    "P-BULK-07", "RFC 7644 §3.7", Must, Provider, RFC, false, "failOnErrors", "Without failOnErrors every operation runs; with failOnErrors=1 processing stops after the first error." => "failOnErrors An integer specifying the number of errors that the service provider will accept before the operation is terminated and an error response is returned.";
    "P-BULK-08", "RFC 7644 §3.7.4", Must, Provider, RFC, false, "maxOperations is enforced", "More than maxOperations operations gets 413 with the limit in the error." => "If either limit is exceeded, the service provider MUST return HTTP response code 413 (Payload Too Large). The returned response MUST specify the limit exceeded in the body of the error response.";
    "P-BULK-09", "RFC 7644 §3.7.4", Must, Provider, RFC, false, "maxPayloadSize is enforced", "A payload above maxPayloadSize gets 413 with the limit in the error." => "If either limit is exceeded, the service provider MUST return HTTP response code 413 (Payload Too Large). The returned response MUST specify the limit exceeded in the body of the error response.";
    "P-BULK-10", "RFC 7644 §3.7", Must, Provider, RFC, false, "Stale version fails the operation", "An operation whose version does not match the current ETag fails with 412." => "version The current resource version. Version MAY be used if the service provider supports entity-tags (ETags) (Section 2.3 of [RFC7232]) and \"method\" is \"PUT\", \"PATCH\", or \"DELETE\".";
    "P-BULK-11", "RFC 7644 §3.12", Should, Provider, RFC, false, "Bulk unsupported is 501", "With bulk.supported false, POST /Bulk gets 501." => "501 (Not Implemented): Service provider does not support the request operation, e.g., PATCH.";
    "I-IPSIE-01", "IPSIE AL1 SCIM l.186-190", Must, Provider, IPSIE, false, "IPSIE look-up filters", "userName eq, externalId eq and emails[value eq \"...\"] each find exactly the user." => "Application Providers MUST support the following filter expressions: * username eq {username} * externalId eq {externalId} * emails[value eq {email}]";
    "I-IPSIE-02", "IPSIE AL1 SCIM l.166", Must, Provider, IPSIE, false, "A deleted username is free again", "After a user is deleted, a user with the same userName can be created." => "After a user is deleted, the Application MUST allow the creation of a new user with the same username.";
    "I-IPSIE-03", "IPSIE AL1 SCIM l.228-240", Must, Provider, IPSIE, false, "IPSIE membership PATCH forms", "add with path members and a value array; remove with path members[value eq \"id\"]; remove with path members (every member); none with a value on remove." => "The op attribute MUST contain either \"add\" or \"remove\". ... The path attribute MUST be either: \"members\" (to remove all members) \"members[value eq {id}]\" (to remove a single member)";
    "I-IPSIE-04", "IPSIE AL1 SCIM l.212-218", Must, Provider, IPSIE, false, "Groups read without members", "GET /Groups/{id}?excludedAttributes=members and GET /Groups?filter=displayName eq ...&excludedAttributes=members answer the group without members." => "Group searches by id are performed by the SCIM operation GET /Group/{id}?excludedAttributes=members";
    "I-IPSIE-05", "IPSIE AL1 SCIM l.176, 210", Must, Provider, IPSIE, false, "Users and Groups page", "GET /Users and GET /Groups page by index (startIndex and count) or by RFC 9865 cursor." => "To ensure that large amounts of data can be read from the Application, the application MUST support with index-based or cursor-based pagination for the GET /Groups request.";
    "I-IPSIE-06", "IPSIE AL1 SCIM l.176, 210, 270", Must, Provider, IPSIE, true, "Rate limited, with Retry-After", "A burst of GET /Users (at most --rate-limit-burst, 8 at a time) meets 429 with a Retry-After in seconds, and a request after that wait is served." => "To ensure system stability and prevent abuse, the Application SHALL enforce rate limits on this endpoint and MUST respond with appropriate headers, such as \"429 Too Many Requests\" and \"Retry-After,\" when limits are exceeded.";
    "I-IPSIE-07", "IPSIE AL1 SCIM l.98, 121", Must, Provider, IPSIE, true, "OAuth is the authentication", "ServiceProviderConfig's authenticationSchemes lists an OAuth scheme." => "All SCIM operations SHALL be authenticated and authorized via OAuth 2.0 as specified in Section 3.1.";
    "I-IPSIE-08", "IPSIE AL1 SCIM l.246-258", Must, Provider, IPSIE, true, "Users and Groups are described", "/ResourceTypes lists User and Group, /Schemas holds both schemas, and the User schema has emails." => "The supported ResourceTypes MUST include Users and Groups.";
    "P-CURSOR-01", "RFC 9865 §4", Should, Provider, RFC, false, "Cursor paging is advertised", "A provider that answers an empty cursor with nextCursor lists pagination in ServiceProviderConfig." => "A SCIM service provider implementing cursor-based pagination SHOULD include the following additional attribute in JSON document returned by the /ServiceProviderConfig endpoint";
    "P-CURSOR-02", "RFC 9865 §4", Must, Provider, RFC, false, "pagination is well formed", "pagination.cursor and pagination.index are booleans, cursor true only when cursors work; defaultPaginationMethod is cursor or index; defaultPageSize, maxPageSize and cursorTimeout are positive integers when given." => "A Boolean value specifying support of cursor-based pagination. REQUIRED.";
    "P-CURSOR-03", "RFC 9865 §2", Must, Provider, RFC, false, "nextCursor walks every page", "From an empty cursor with count=2 over 5 users, every page but the last has nextCursor, none holds more than 2, and the pages hold every user once; cursors are unreserved characters only." => "Service providers supporting cursor-based pagination MUST include nextCursor in all paged query responses except when returning the last page. nextCursor MUST be omitted from a response only to indicate that there are no more result pages.";
    "P-CURSOR-04", "RFC 9865 §2", Must, Provider, RFC, false, "No previousCursor on the first page", "The first page has no previousCursor; a previousCursor on the second page leads back to the first." => "Returning previousCursor is OPTIONAL. previousCursor MUST NOT be returned with the first page.";
    "P-CURSOR-05", "RFC 9865 §3", Must, Provider, RFC, false, "Cursors through POST .search", "A SearchRequest with cursor \"\" and count pages by nextCursor as the GET does." => "When posting to /.search, the client would pass the parameters defined in Section 2 in the body of the POST request.";
    "P-CURSOR-06", "RFC 9865 §2.1", Should, Provider, RFC, false, "A forged cursor is invalidCursor", "A cursor the server never issued, or one altered, gets 400 with scimType invalidCursor." => "If a service provider encounters invalid pagination query parameters (invalid cursor value, count value, etc), or other error conditions, the service provider SHOULD return the appropriate HTTP response status code and detailed JSON error response as defined in Section 3.12 of [RFC7644].";
    "P-CURSOR-07", "RFC 9865 §2.1", Should, Client, RFC, false, "A changed count is invalidCount", "A later page asked with another count than the first request's gets 400 invalidCount. Robustness: repeating the first request's parameters is the client's obligation." => "To retrieve another result page for a query, the client MUST query the same service provider endpoint with all query parameters and values being identical to the initial query with the exception of the cursor value";
    "P-CURSOR-08", "RFC 9865 §2.4", Must, Provider, RFC, false, "The default paging is the advertised one", "With both methods and a defaultPaginationMethod, a request without cursor or startIndex is paged that way: cursor gives nextCursor, index gives startIndex 1." => "service providers supporting both pagination methods MUST choose a default pagination method to use when responding to requests that have not specified a pagination query parameter.";
}

/// Every check the suite has, in report order.
pub fn definitions() -> &'static [CheckDef] {
    DEFS
}

pub fn def(id: &str) -> Option<CheckDef> {
    DEFS.iter().find(|d| d.id == id).copied()
}

/// Position in the definition table, for a stable report order.
pub fn order(id: &str) -> usize {
    DEFS.iter().position(|d| d.id == id).unwrap_or(usize::MAX)
}

type SectionFuture<'a> = Pin<Box<dyn Future<Output = Vec<CheckResult>> + Send + 'a>>;

/// Every section; they share nothing on the server but the run prefix, so they run concurrently.
pub fn sections(cx: &Cx) -> Vec<SectionFuture<'_>> {
    vec![
        Box::pin(discovery::section(cx)),
        Box::pin(promises::section(cx)),
        Box::pin(access::section(cx)),
        Box::pin(requests::section(cx)),
        Box::pin(errors::section(cx)),
        Box::pin(me::section(cx)),
        Box::pin(lifecycle::section(cx)),
        Box::pin(queries::section(cx)),
        Box::pin(modifications::section(cx)),
        Box::pin(etags::section(cx)),
        Box::pin(users::section(cx)),
        Box::pin(generated::section(cx)),
        Box::pin(filters::section(cx)),
        Box::pin(patches::section(cx)),
        Box::pin(selection::section(cx)),
        Box::pin(groups::section(cx)),
        Box::pin(extension::section(cx)),
        Box::pin(bulk::section(cx)),
        Box::pin(integrity::section(cx)),
        Box::pin(cursors::section(cx)),
        Box::pin(ipsie::section(cx)),
    ]
}

/// What must run alone once every section is done.
pub async fn after_the_rest(cx: &Cx) -> Vec<CheckResult> {
    ipsie::last(cx).await
}

/// Runs one check: `$body` is an async block that may use `log` and returns `Result<(), String>`.
macro_rules! check {
    ($sec:expr, $id:literal, $log:ident => $body:block) => {
        if $sec.wants($id) {
            let started = Instant::now();
            let mut $log: Vec<Exchange> = Vec::new();
            let result: Result<(), String> = async { $body }.await;
            $sec.record($id, started, result, $log);
        }
    };
}

/// Runs an informational check: `$body` returns `Result<String, String>`, the observation.
macro_rules! note {
    ($sec:expr, $id:literal, $log:ident => $body:block) => {
        if $sec.wants($id) {
            let started = Instant::now();
            let mut $log: Vec<Exchange> = Vec::new();
            let observed: Result<String, String> = async { $body }.await;
            $sec.note($id, started, observed, $log);
        }
    };
}

// After the macros, which the sections use.
mod access;
mod bulk;
mod cursors;
mod discovery;
mod errors;
mod etags;
mod extension;
mod filters;
mod generated;
mod groups;
mod integrity;
mod ipsie;
mod lifecycle;
mod me;
mod modifications;
mod patches;
mod promises;
mod queries;
mod requests;
mod selection;
mod users;

/// Sends a request and keeps the exchange in the check's log.
async fn call(
    cx: &Cx,
    log: &mut Vec<Exchange>,
    method: Method,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Result<Exchange, String> {
    if cx.out_of_time() {
        return Err("the run's time limit was reached".into());
    }
    let e = cx.target.send(method, path, body, headers).await?;
    log.push(e.clone());
    Ok(e)
}

fn status(e: &Exchange, expected: &[u16]) -> Result<(), String> {
    if expected.contains(&e.status) {
        Ok(())
    } else {
        Err(format!(
            "expected status {}, got {} from {} {}",
            join(expected),
            e.status,
            e.method,
            e.url
        ))
    }
}

fn join(codes: &[u16]) -> String {
    codes
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(" or ")
}

fn body(e: &Exchange) -> Result<Value, String> {
    e.json().ok_or_else(|| {
        format!(
            "expected a JSON body from {} {}, got {:?}",
            e.method,
            e.url,
            e.response_body.chars().take(120).collect::<String>()
        )
    })
}

/// A SCIM Error with this status (and scimType, when given).
fn scim_error(e: &Exchange, code: u16, scim_type: Option<&str>) -> Result<(), String> {
    status(e, &[code])?;
    let b = body(e)?;
    if b["schemas"] != json!([ERROR]) {
        return Err(format!(
            "expected schemas [\"{ERROR}\"], got {}",
            b["schemas"]
        ));
    }
    if b["status"] != json!(code.to_string()) {
        return Err(format!(
            "expected status \"{code}\" (a string), got {}",
            b["status"]
        ));
    }
    if let Some(t) = scim_type {
        if b["scimType"] != json!(t) {
            return Err(format!("expected scimType \"{t}\", got {}", b["scimType"]));
        }
    }
    Ok(())
}

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

fn resources(list: &Value) -> Vec<Value> {
    list["Resources"].as_array().cloned().unwrap_or_default()
}

/// The error of a check whose preparation failed: a resource it needs was not made.
fn unprepared(why: impl std::fmt::Display) -> String {
    format!("{UNPREPARED}{why}")
}

/// The error of a check whose optional feature the server does not offer.
fn unsupported(why: impl std::fmt::Display) -> String {
    format!("{NOT_SUPPORTED}{why}")
}

/// Registers for clean-up whatever resource a successful answer created.
fn keep(cx: &Cx, e: &Exchange) {
    if (200..300).contains(&e.status) {
        let location = e
            .json()
            .and_then(|b| b["meta"]["location"].as_str().map(str::to_owned))
            .or_else(|| e.header("location").map(str::to_owned));
        if let Some(loc) = location {
            cx.created(loc);
        }
    }
}

/// GET that must answer 200 with JSON.
async fn get_json(cx: &Cx, log: &mut Vec<Exchange>, path: &str) -> Result<Value, String> {
    let e = call(cx, log, Method::GET, path, None, &[]).await?;
    status(&e, &[200])?;
    body(&e)
}

/// The resource a create made: any 2xx whose JSON body has an id. Only P-CREATE-01 judges the
/// status (201), so a server with one wrong status gets that one check failed and every other
/// check goes on with the resource it made.
fn resource_made(e: &Exchange) -> Result<Value, String> {
    let b = e
        .json()
        .filter(|b| (200..300).contains(&e.status) && b["id"].is_string());
    b.ok_or_else(|| {
        format!(
            "creating a resource with {} {} answered {} without a resource id: {}",
            e.method,
            e.url,
            e.status,
            e.response_body.chars().take(160).collect::<String>()
        )
    })
}

/// A POST whose created resource, if any, is registered for clean-up.
async fn post(cx: &Cx, log: &mut Vec<Exchange>, path: &str, b: &Value) -> Result<Exchange, String> {
    let e = call(cx, log, Method::POST, path, Some(b), &[]).await?;
    keep(cx, &e);
    Ok(e)
}

/// The userNames of a ListResponse, without the run prefix, in the order given.
fn user_names(cx: &Cx, list: &Value) -> Vec<String> {
    resources(list)
        .iter()
        .filter_map(|u| u["userName"].as_str())
        .map(|n| n.trim_start_matches(&cx.prefix).to_owned())
        .collect()
}

/// The userNames a filter selects, without the run prefix, sorted.
async fn matching(cx: &Cx, log: &mut Vec<Exchange>, filter: &str) -> Result<Vec<String>, String> {
    let b = get_json(
        cx,
        log,
        &format!("/Users?count=100&filter={}", encode(filter)),
    )
    .await?;
    let mut names = user_names(cx, &b);
    names.sort();
    Ok(names)
}

/// A PATCH that must succeed; returns the resource as a GET shows it afterwards.
async fn patched(
    cx: &Cx,
    log: &mut Vec<Exchange>,
    path: &str,
    ops: Value,
) -> Result<Value, String> {
    patched_then_read(cx, log, path, ops, path).await
}

/// A PATCH of `path` that must succeed; returns what a GET of `read` shows afterwards.
async fn patched_then_read(
    cx: &Cx,
    log: &mut Vec<Exchange>,
    path: &str,
    ops: Value,
    read: &str,
) -> Result<Value, String> {
    if !cx.supports("patch") {
        return Err(unsupported("patch.supported is false"));
    }
    let e = call(cx, log, Method::PATCH, path, Some(&patch_op(ops)), &[]).await?;
    status(&e, &[200, 204])?;
    get_json(cx, log, read).await
}

/// Whether the server serves /Groups (sections on groups are skipped when not). Each section
/// asks when it starts: a server that answers an empty list 404 says yes only once groups exist.
async fn has_groups(cx: &Cx) -> bool {
    matches!(cx.target.get("/Groups?count=0").await, Ok(e) if e.status == 200)
}

/// The ids of a group's members, sorted.
fn member_ids(g: &Value) -> Vec<String> {
    let mut ids: Vec<String> = g["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["value"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

/// Creates users for a section (each a `user(cx, name)` changed by `tweak`); the error says
/// which could not be made.
async fn population(
    cx: &Cx,
    names: &[&str],
    tweak: impl Fn(usize, &mut Value),
) -> Result<Vec<(String, Value)>, String> {
    let mut made = Vec::new();
    let mut failed = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let mut u = user(cx, n);
        tweak(i, &mut u);
        let answer = cx.target.send(Method::POST, "/Users", Some(&u), &[]).await;
        if let Ok(e) = &answer {
            keep(cx, e);
        }
        match answer.and_then(|e| resource_made(&e)) {
            Ok(b) => made.push((
                format!("/Users/{}", b["id"].as_str().unwrap_or_default()),
                b,
            )),
            Err(why) => failed.push(format!("creating {n}: {why}")),
        }
    }
    if failed.is_empty() {
        Ok(made)
    } else {
        Err(format!(
            "test users could not be created: {}",
            failed.join("; ")
        ))
    }
}

fn user(cx: &Cx, name: &str) -> Value {
    json!({"schemas": [USER], "userName": format!("{}{name}", cx.prefix), "externalId": format!("{}{name}", cx.prefix),
           "active": true, "name": {"givenName": name, "familyName": "Scimlab"},
           "emails": [{"value": format!("{}{name}@example.com", cx.prefix), "type": "work", "primary": true}]})
}

/// Creates a user for a section's own use; its location is registered for clean-up.
async fn own_user(cx: &Cx, log: &mut Vec<Exchange>, name: &str) -> Result<(String, Value), String> {
    let e = post(cx, log, "/Users", &user(cx, name)).await?;
    let b = resource_made(&e).map_err(unprepared)?;
    Ok((
        format!("/Users/{}", b["id"].as_str().unwrap_or_default()),
        b,
    ))
}

fn patch_op(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}
