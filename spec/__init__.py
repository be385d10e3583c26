"""The OpenAPI documents ovmeet serves, installed as package data of `ovmeet.spec`."""
